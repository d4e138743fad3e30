from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse


class Command(BaseCommand):
    help = "Print where the site, the admin, the health check and the local outbox are (what `make run` prints)."

    def handle(self, *args, **options):
        site = settings.SITE_URL
        lines = [
            f"  site        {site}/",
            f"  admin       {site}/{settings.ADMIN_URL}  (create a login: .venv/bin/python manage.py createsuperuser)",
            f"  health      {site}{reverse('healthz')}",
        ]
        if settings.SES_EMULATOR and not settings.PRODUCTION:
            lines.append(f"  local mail  {site}{reverse('dev:outbox')}  or  make outbox")
        if not settings.PRODUCTION and site != settings.DEV_SERVER_URL:
            # SITE_URL was set (a tunnel, a proxy): say where the server itself listens.
            lines.append(f"  served at   {settings.DEV_SERVER_URL}/  (links in mail use SITE_URL)")
        self.stdout.write("\n".join(lines))
