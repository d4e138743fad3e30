from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.simple_tag
def source_code_url() -> str:
    """Where a visitor gets the source of the DailyQ they are using (AGPL-3.0 section 13)."""
    return settings.SOURCE_CODE_URL or reverse("source-code")
