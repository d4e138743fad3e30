"""Every DailyQ mail is rendered and built here.

A mail is a folder of three templates under `templates/emails/<name>/`:
`subject.txt`, `body.txt` and `body.html` (which extends `emails/base.html`).
`render_email` turns them into a subject, a text part and an HTML part in the
subscriber's language; `build_email` wraps those in a multipart message ready
to `.send()`. Links in mail come from `absolute_url`, built on SITE_URL: a
Celery worker has no request to build them from.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine
from django.utils import translation

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
_BLANK_LINES = re.compile(r"\n{3,}")

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
    if "\\" in path or any(char.isspace() or unicodedata.category(char) == "Cc" for char in path):
        raise ValueError(f"Not a clean site path: {path!r}")
    return settings.SITE_URL.rstrip("/") + path


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
    _check_recipient(to)
    extra_headers = _checked_headers(headers or {})
    rendered = render_email(name, context, language=language)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=extra_headers,
        connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


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
