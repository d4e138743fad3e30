from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_site_url_is_https(app_configs, **kwargs):
    # Links in every mail are built from SITE_URL; over plain http the manage
    # and unsubscribe tokens would travel in clear text.
    if not settings.SITE_URL.startswith("https://"):
        return [
            Warning(
                f"SITE_URL ({settings.SITE_URL}) is not https.",
                hint="Serve DailyQ over TLS and set SITE_URL=https://...",
                id="dailyq.W001",
            )
        ]
    return []
