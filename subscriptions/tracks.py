"""The tracks readers choose from (Track rows, edited in the admin), as every door lists them.

A track is offered while it is active: the forms, the CSV import and the
daily send see only those. Retired tracks keep their archive, feeds and
figures, so the reads that show history list every track.

Pages and mails name tracks often (a list of 100 deliveries names 100), so
the rows are kept in the shared cache, dropped whenever one is saved or deleted.
"""

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.functional import lazy

from subscriptions.models import Track

_CACHE_KEY = "tracks"
# Every process forgets the rows on a save through the shared cache; the
# timeout only bounds what a save made outside Django (SQL) leaves stale.
_CACHE_SECONDS = 300


def all_tracks() -> list[Track]:
    """Every track, retired ones included, in the operator's order."""
    tracks = cache.get(_CACHE_KEY)
    if tracks is None:
        tracks = list(Track.objects.all())
        cache.set(_CACHE_KEY, tracks, _CACHE_SECONDS)
    return tracks


@receiver([post_save, post_delete], sender=Track)
def _forget(**kwargs) -> None:
    cache.delete(_CACHE_KEY)
    # Another process may read the old rows before this transaction commits.
    transaction.on_commit(lambda: cache.delete(_CACHE_KEY))


def offered() -> list[Track]:
    """The tracks readers can choose and are mailed, in order."""
    return [track for track in all_tracks() if track.is_active]


def offered_slugs() -> list[str]:
    return [track.slug for track in offered()]


def all_slugs() -> list[str]:
    """Every track's slug, retired ones included: their readers' history still counts."""
    return [track.slug for track in all_tracks()]


def choices(*, retired: bool = False) -> list[tuple[str, str]]:
    """(slug, name in the active language) for a form or filter; `retired`: list those too."""
    return [(track.slug, track.name) for track in (all_tracks() if retired else offered())]


def _name(slug: str) -> str:
    track = get(slug)
    return track.name if track else slug


# The name of the track `slug` in the language active when it is shown (the slug
# itself if there is none): a mail's context is made before it is rendered in
# its reader's language, as gettext_lazy's strings are.
label = lazy(_name, str)


def get(slug: object, *, retired: bool = True) -> Track | None:
    """The track `slug` names, or None (also for a retired one unless `retired`)."""
    for track in all_tracks():
        if track.slug == slug and (retired or track.is_active):
            return track
    return None


def require(slug: str, *, retired: bool = True) -> Track:
    """The track `slug` names; ValueError naming the known ones if there is none."""
    track = get(slug, retired=retired)
    if track is None:
        known = [t.slug for t in (all_tracks() if retired else offered())]
        raise ValueError(f"Unknown track {slug!r}: use {', '.join(known) or '(none: add one in the admin)'}")
    return track
