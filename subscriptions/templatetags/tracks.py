from django import template

from subscriptions import tracks

register = template.Library()


@register.filter
def track_name(slug: str) -> str:
    """The name of the track `slug` in the active language: {{ question.category|track_name }}."""
    return tracks.label(slug)


@register.simple_tag
def track_choices(retired: bool = False) -> list[tuple[str, str]]:
    """(slug, name) of the offered tracks, retired ones too with retired=True: {% track_choices as tracks %}."""
    return tracks.choices(retired=retired)
