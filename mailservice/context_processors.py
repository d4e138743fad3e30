from django.conf import settings


def site(request):
    return {"SITE_URL": settings.SITE_URL, "SES_EMULATOR": settings.SES_EMULATOR, "DEBUG": settings.DEBUG}
