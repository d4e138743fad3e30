"""Every DailyQ mail is rendered and built here.

A mail is a folder of three templates under `templates/emails/<name>/`:
`subject.txt`, `body.txt` and `body.html` (which extends `emails/base.html`).
`render_email` turns them into a subject, a text part and an HTML part in the
subscriber's language; `build_email` wraps those in a multipart message ready
to `.send()`. Links in mail come from `absolute_url`, built on SITE_URL: a
Celery worker has no request to build them from.
"""

import re
import secrets
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from html import unescape
from typing import Any

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine
from django.utils import translation
from django.utils.html import escape, strip_tags

SITE_NAME = "DailyQ"

# RFC 5322 allows longer subjects, but clients truncate far earlier; a
# runaway value (a pasted answer, a bug) should not make a kilobyte header.
SUBJECT_MAX_LENGTH = 200

# build_email owns these headers; letting a caller set them would, for
# example, show one "To" to the reader while SES delivers to another.
_RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "content-type", "content-transfer-encoding", "mime-version"}
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII without ":" (RFC 5322 field name)
_LINE_BREAKS = ("\r", "\n", "\0")
# An address of atext (RFC 5322) and a domain of letters, digits, dots and
# hyphens: no quotes, comments, brackets, commas or spaces. Most recipients
# are like this, and checking it is a tenth of parsing it (getaddresses).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
# Mail HTML carries inline styles (inlined CSS) and remote images, never
# scripts: a page that shows one (the admin's preview, the local outbox)
# frames it under this policy.
MAIL_HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'"
_BLANK_LINES = re.compile(r"\n{3,}")
# A backslash, whitespace (\s matches what str.isspace does) or a control character (Unicode's Cc).
_UNCLEAN_PATH = re.compile(r"[\\\s\x00-\x1f\x7f-\x9f]")

# The base layout's <style> block is inlined into style="" attributes, because
# Gmail's app and Outlook ignore or strip much of <style>. @media rules cannot
# be inlined; keep_at_rules puts them back in a <style> block for the clients
# that honour it. Remote stylesheets are never fetched (renders must not
# depend on the network; mail clients would not load them either).
_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def absolute_url(path_or_url: str) -> str:
    """SITE_URL + a site path such as reverse() returns ("/manage/abc/").

    Anything else (a full URL, "//host", a relative path) is refused, so a
    link in a mail can only ever point at this site.
    """
    path = path_or_url
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"Not a site path starting with '/': {path!r}")
    # Browsers treat "\" like "/" ("/\evil.example" is another host), and
    # whitespace or control characters have no place in a reversed URL.
    if _UNCLEAN_PATH.search(path):
        raise ValueError(f"Not a clean site path: {path!r}")
    return settings.SITE_URL.rstrip("/") + path


def plain_text(html: str) -> str:
    """The text of an HTML fragment on one line, entities decoded (for a preview line or a summary)."""
    return " ".join(unescape(strip_tags(html)).split())


def render_email(name: str, context: Mapping[str, Any], *, language: str) -> RenderedEmail:
    """Render templates/emails/<name>/{subject.txt,body.txt,body.html} in `language`."""
    language = _supported_language(language)
    full_context = {"site_url": settings.SITE_URL, "site_name": SITE_NAME, **context}
    engine = Engine.get_default()
    folder = f"emails/{name}"
    with translation.override(language):
        # Subject and text are plain text: escaping "&" to "&amp;" there would
        # show up literally in the reader's inbox.
        subject = engine.get_template(f"{folder}/subject.txt").render(Context(full_context, autoescape=False))
        text = engine.get_template(f"{folder}/body.txt").render(Context(full_context, autoescape=False))
        html = engine.get_template(f"{folder}/body.html").render(Context(full_context, autoescape=True))
    return RenderedEmail(subject=_clean_subject(subject), text=_clean_text(text), html=_inliner.inline(html))


def build_email(
    name: str,
    *,
    to: str,
    context: Mapping[str, Any],
    language: str,
    headers: Mapping[str, str] | None = None,
    connection=None,
) -> EmailMultiAlternatives:
    """A new text + HTML message from DEFAULT_FROM_EMAIL to the one address `to`; not sent."""
    return email_message(render_email(name, context, language=language), to=to, headers=headers, connection=connection)


def email_message(
    rendered: RenderedEmail, *, to: str, headers: Mapping[str, str] | None = None, connection=None
) -> EmailMultiAlternatives:
    """A text + HTML message of `rendered` from DEFAULT_FROM_EMAIL to the one address `to`; not sent."""
    _check_recipient(to)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=_checked_headers(headers or {}),
        connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


# --- One render for many recipients -----------------------------------------------
#
# A day's mail goes to thousands of readers who differ only in their links
# (signed tokens). render_shared_email renders a mail once with markers in
# place of those values and keeps it; personalise() puts each reader's
# values in. The markers carry a random per-process nonce, so no question
# text can contain one.

_MARKER = f"dailyq-{secrets.token_hex(8)}-"
_SHARED_RENDERS_MAX = 256
_shared_renders: OrderedDict = OrderedDict()
_shared_lock = threading.Lock()
# What a personal value may not hold: it goes into a header-like subject line
# and into HTML attributes after cleaning and escaping were done.
_UNSAFE_VALUE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class SharedEmail(RenderedEmail):
    """A render with markers for the personal values (render_shared_email).

    `pieces` holds subject, text and HTML split at the markers, once:
    literal text and field names in turn. personalise() joins them with a
    reader's values instead of searching every part for every marker per
    mail. None when a marker did not come through the render whole (a cut
    subject), which personalise refuses.
    """

    pieces: tuple[tuple[str, ...], ...] | None = None


def render_shared_email(
    name: str,
    make_context: Callable[[], Mapping[str, Any]],
    *,
    language: str,
    personal: tuple[str, ...],
    key: Hashable,
) -> SharedEmail:
    """render_email of `make_context()` with the `personal` entries as markers, for personalise().

    Renders are kept (the last 256) by `name`, language and `key`: the
    caller's key must identify everything `make_context` returns, which is
    only called when no render is kept.
    """
    language = _supported_language(language)
    cache_key = (name, language, settings.SITE_URL, personal, key)
    with _shared_lock:
        shared = _shared_renders.get(cache_key)
        if shared is not None:
            _shared_renders.move_to_end(cache_key)
            return shared
    markers = {field: personal_marker(field) for field in personal}
    rendered = render_email(name, {**make_context(), **markers}, language=language)
    shared = SharedEmail(**vars(rendered), pieces=_split_at_markers(rendered, personal))
    with _shared_lock:
        _shared_renders[cache_key] = shared
        while len(_shared_renders) > _SHARED_RENDERS_MAX:
            _shared_renders.popitem(last=False)
    return shared


def personal_marker(field: str) -> str:
    """The marker personalise() fills with `field`'s value: for personal values a context holds in a list
    (one answer link per question), which the template cannot look up by name."""
    return f"{_MARKER}{field}-"


def _split_at_markers(rendered: RenderedEmail, personal: tuple[str, ...]) -> tuple[tuple[str, ...], ...] | None:
    marker = re.compile(re.escape(_MARKER) + "(" + "|".join(re.escape(field) for field in personal) + ")-")
    parts = tuple(tuple(marker.split(part)) for part in (rendered.subject, rendered.text, rendered.html))
    if any(_MARKER in literal for pieces in parts for literal in pieces[::2]):
        return None
    return parts


def personalise(shared: SharedEmail, values: Mapping[str, str]) -> RenderedEmail:
    """`shared` (from render_shared_email) with each marker replaced by its value, HTML-escaped in the HTML."""
    for field, value in values.items():
        if not isinstance(value, str) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"Invalid value for {field}: {value!r}")
    if shared.pieces is None:
        raise ValueError("A personal value was left unfilled")
    escaped = {field: escape(value) for field, value in values.items()}
    try:
        subject, text, html = (
            _join(pieces, chosen) for pieces, chosen in zip(shared.pieces, (values, values, escaped), strict=True)
        )
    except KeyError:
        raise ValueError("A personal value was left unfilled") from None
    return RenderedEmail(subject=subject, text=text, html=html)


def _join(pieces: tuple[str, ...], values: Mapping[str, str]) -> str:
    filled = list(pieces)
    for n in range(1, len(filled), 2):
        filled[n] = values[filled[n]]
    return "".join(filled)


def _supported_language(language: str) -> str:
    try:
        return translation.get_supported_language_variant(language)
    except LookupError:
        raise ValueError(f"Unsupported language for email: {language!r}") from None


def _clean_subject(subject: str) -> str:
    # split() without arguments splits on every Unicode line break and space
    # (\r, \n, \v, \f, \x1c-\x1f, \x85, \u2028, ...), so none survives the
    # join: a subject is one header line, whatever the context held. Other
    # control characters count as spaces too.
    subject = "".join(" " if unicodedata.category(char) == "Cc" else char for char in subject)
    subject = " ".join(subject.split())
    if len(subject) > SUBJECT_MAX_LENGTH:
        subject = subject[: SUBJECT_MAX_LENGTH - 1].rstrip() + "…"
    return subject


def _clean_text(text: str) -> str:
    # Template tags on lines of their own leave trailing spaces and runs of
    # blank lines behind; plain-text readers show them as they are.
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


def _check_recipient(to: str) -> None:
    if not isinstance(to, str) or any(char in to for char in _LINE_BREAKS):
        raise ValueError(f"Invalid recipient: {to!r}")
    if _PLAIN_ADDRESS.fullmatch(to):
        return  # nothing in it getaddresses could read as more (or less) than one address
    addresses = getaddresses([to])
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        raise ValueError(f"Expected exactly one recipient address: {to!r}")


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for header, value in headers.items():
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise ValueError(f"Invalid header name: {header!r}")
        if header.lower() in _RESERVED_HEADERS:
            raise ValueError(f"Header {header!r} is set by build_email, not by callers")
        if not isinstance(value, str) or any(char in value for char in _LINE_BREAKS):
            raise ValueError(f"Invalid value for header {header}: {value!r}")
        checked[header] = value
    return checked
