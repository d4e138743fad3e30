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


@register()
def check_privacy_contacts(app_configs, **kwargs):
    # Korean law (PIPA) expects the privacy policy to name the operator and a
    # privacy officer with a contact; unset, /privacy/ falls back to the sender.
    missing = [
        name
        for name in ("OPERATOR_NAME", "PRIVACY_OFFICER_NAME", "PRIVACY_CONTACT_EMAIL")
        if settings.PRODUCTION and not getattr(settings, name)
    ]
    if missing:
        return [
            Warning(
                f"{', '.join(missing)} not set: the privacy policy (/privacy/) names no operator or privacy contact.",
                hint="Set them in the environment (README: Privacy policy).",
                id="dailyq.W002",
            )
        ]
    return []
