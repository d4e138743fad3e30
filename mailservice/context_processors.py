from django.conf import settings
from django.utils.functional import SimpleLazyObject

from mailer.schedule_text import schedule_text


def site(request):
    return {
        "SITE_URL": settings.SITE_URL,
        "SES_EMULATOR": settings.SES_EMULATOR,
        "DEBUG": settings.DEBUG,
        # The footer of every page says it; read only where a template does (not the admin).
        "send_schedule": SimpleLazyObject(schedule_text),
    }
