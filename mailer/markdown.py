"""Markdown to safe HTML, for the web pages and the mail alike.

Question files come from imports anyone with admin access can run, so their
text is untrusted. It is bounded in size (MAX_MARKDOWN_CHARS), rendered, then
cleaned against an allowlist: scripts, styles, event handlers and
javascript: links never survive; https images do, loaded lazily and with an
alt text. `list_markdown_changes` says what the page shows differently from
the source, so an import can name every file it altered.

Two readings follow GitHub's, where the question banks are written:
<details> starts an HTML block that runs to the next blank line (so an
indented <summary> is no code block), and Markdown inside <details> is
rendered after that.
"""

import functools
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import markdown as markdown_lib
import nh3
from django.core.exceptions import ValidationError
from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from markdown import inlinepatterns
from markdown.extensions import Extension
from markdown.extensions.tables import TableExtension
from markdown.preprocessors import Preprocessor

# Seven times the longest bundled answer. Rendering this much of the worst text
# known for Python-Markdown stays under a second.
MAX_MARKDOWN_CHARS = 20_000
# How far a link's text and its target may reach. From every `[`, Python-Markdown
# looks for the closing bracket and parenthesis up to the end of the paragraph,
# which is quadratic; a longer link text or address stays plain text.
LINK_TEXT_WINDOW = 1_000
LINK_TARGET_WINDOW = 2_048

ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "code", "pre", "kbd",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "details", "summary",
    "sup", "sub", "img",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
    "details": {"open"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
}
# nh3 keeps these on any allowed tag.
_KEPT_EVERYWHERE = {"title", "lang"}
# The cleaning sets these itself: a source's own value is replaced, not lost.
_SET_BY_US = {("a", "rel"), ("img", "loading")}
_REMOVED_WITH_CONTENT = {"script", "style"}
LINK_SCHEMES = {"http", "https", "mailto"}


def validate_markdown_size(value: str) -> None:
    """The size bound, for model fields and so for the admin's forms."""
    if len(value) > MAX_MARKDOWN_CHARS:
        raise ValidationError(
            gettext(
                "This text has %(count)s characters; at most %(limit)s are allowed. "
                "Shorten it, or split the question in two."
            ),
            code="markdown_too_long",
            params={"count": f"{len(value):,}", "limit": f"{MAX_MARKDOWN_CHARS:,}"},
        )


def render_markdown(text: str) -> SafeString:
    return _render(text or "", gettext("Image"))[0]


def list_markdown_changes(text: str) -> list[str]:
    """What a page shows differently from `text`: removed markup, dropped links and images, outside images."""
    return list(_render(text or "", "")[1])


@functools.lru_cache(maxsize=1024)
def _render(text: str, image_alt: str) -> tuple[SafeString, tuple[str, ...]]:
    # Cached: a day's mail repeats a few questions thousands of times, and a
    # Markdown render (extensions loaded anew each call) is the costliest
    # step of building one.
    if len(text) > MAX_MARKDOWN_CHARS:
        # Stored before the bound, or written around it: shown whole, without the cost of Markdown.
        note = f"longer than {MAX_MARKDOWN_CHARS:,} characters: shown as plain text, not Markdown"
        return mark_safe(linebreaks(escape(text))), (note,)  # noqa: S308 (escaped just here)
    html = markdown_lib.markdown(
        text,
        extensions=[
            "fenced_code",
            TableExtension(use_align_attribute=True),
            "sane_lists",
            "md_in_html",
            _BoundedGitHubReading(),
        ],
        output_format="html",
    )
    changes = _Audit.of(html)
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={tag: names - {"loading"} for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        set_tag_attribute_values={"img": {"loading": "lazy"}},
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    cleaned = _IMG_TAG.sub(lambda m: _with_alt(m.group(0), image_alt), cleaned)
    cleaned = _LINK.sub(lambda m: m.group(0) if ' href="' in m.group(1) else m.group(2), cleaned)
    return mark_safe(cleaned), changes  # noqa: S308 (sanitised by nh3 just above)


# --- Links and images: one verdict for the sanitiser and the audit ----------------------


_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def _url(value: str) -> str:
    # As browsers read an address: tabs and newlines inside are dropped, controls and spaces around it too.
    return re.sub(r"[\t\n\r]", "", value or "").strip(_C0_AND_SPACE)


def link_problem(value: str) -> str | None:
    """Why a link's target is dropped (its text stays), or None to keep it."""
    url = _url(value)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a valid address"
    if parts.scheme:
        return None if parts.scheme.lower() in LINK_SCHEMES else "this kind of address is not allowed"
    if url.startswith(("/", "#")):
        return None
    return "a relative address points nowhere on this site"


def image_problem(value: str) -> str | None:
    """Why an image is dropped, or None to show it (https only: CSP allows nothing else from outside)."""
    url = _url(value)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a valid address"
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return None
    if scheme == "http":
        return "only https images are shown"
    if not scheme and not url.startswith("//"):
        return "a relative address points nowhere on this site"
    return "this kind of address is not allowed"


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return None if link_problem(value) else value
    if tag == "img" and attribute == "src":
        return None if image_problem(value) else value
    return value


# In nh3's output every attribute value is double-quoted, with " escaped (> may stay raw),
# and links never nest.
_IMG_TAG = re.compile(r'<img\b(?:[^>"]|"[^"]*")*>')
_LINK = re.compile(r'<a\b((?:[^>"]|"[^"]*")*)>(.*?)</a>', re.DOTALL)  # a link whose target was dropped is text
_ALT = re.compile(r'\salt="([^"]*)"')


def _with_alt(tag: str, image_alt: str) -> str:
    if ' src="' not in tag:
        return ""  # its address was dropped: nothing to show
    match = _ALT.search(tag)
    if match and match.group(1).strip():
        return tag
    if match:
        tag = tag[: match.start()] + tag[match.end() :]
    return tag.replace("<img", f'<img alt="{escape(image_alt)}"', 1)


def _short(url: str) -> str:
    url = _url(url)
    return url if len(url) <= 100 else url[:97] + "..."


class _Audit(HTMLParser):
    """Reads Markdown's HTML before it is cleaned and notes what the cleaning will change."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.changes: dict[str, None] = {}

    @classmethod
    def of(cls, html: str) -> tuple[str, ...]:
        audit = cls()
        audit.feed(html)
        audit.close()
        return tuple(audit.changes)

    def note(self, change: str) -> None:
        self.changes.setdefault(change, None)

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            kept = "with its content" if tag in _REMOVED_WITH_CONTENT else "(its text kept)"
            self.note(f"<{tag}> removed {kept}")
            return
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | _KEPT_EVERYWHERE
        values = {}
        for name, value in attrs:
            values.setdefault(name, value or "")
            if name not in allowed and (tag, name) not in _SET_BY_US:
                self.note(f"attribute {name} removed from <{tag}>")
        if tag == "a" and "href" in values and (problem := link_problem(values["href"])):
            self.note(f"link {_short(values['href'])} removed (its text kept): {problem}")
        if tag == "img":
            self._note_image(values)

    handle_startendtag = handle_starttag

    def _note_image(self, values: dict[str, str]) -> None:
        src = values.get("src", "")
        if problem := image_problem(src):
            self.note(f"image {_short(src) or '(no address)'} removed: {problem}")
            return
        self.note(f"image {_short(src)} shown from {urlsplit(_url(src)).hostname}")
        if not values.get("alt", "").strip():
            self.note(f"image {_short(src)} has no alt text: shown with a generic one")


# --- Python-Markdown, read as GitHub reads it, in bounded time -----------------------------

_DETAILS_START = re.compile(r"( {0,3})<details(?=[\s>])", re.IGNORECASE)
_DETAILS_TAG = re.compile(r"<details(?=[\s>])", re.IGNORECASE)


class _DetailsAsOnGitHub(Preprocessor):
    """Marks <details> for md_in_html and takes the indentation out of its HTML block.

    On GitHub a line starting with <details> opens an HTML block that ends at
    the next blank line; inside it indentation means nothing, so a <summary>
    indented by four spaces is a summary, not a code block. Runs after fenced
    code is set aside, so a <details> shown inside a code block is left alone.
    """

    def run(self, lines: list[str]) -> list[str]:
        result = []
        block_indent = None  # the <details> line's indentation while inside its HTML block
        for line in lines:
            if block_indent is not None:
                if not line.strip():
                    block_indent = None
                else:
                    content = line.lstrip(" \t")
                    if len(line) - len(content) > block_indent:
                        line = " " * block_indent + content
                    line = _DETAILS_TAG.sub('<details markdown="1"', line)
            elif match := _DETAILS_START.match(line):
                block_indent = len(match.group(1))
                line = _DETAILS_TAG.sub('<details markdown="1"', line)
            result.append(line)
        return result


def _bracket_ends(data: str, start: int, stop: int) -> list[int | None]:
    """For each position p in data[start:stop], the index just past the `]` that
    closes a `[` standing right before p, or None if it does not close before stop."""
    stop = min(stop, len(data))
    ends: list[int | None] = [None] * (stop - start)
    pending: list[tuple[int, int]] = []  # (offset, depth there); depths never decrease upwards
    depth = 0
    for offset in range(stop - start):
        while pending and pending[-1][1] > depth:
            ends[pending.pop()[0]] = start + offset
        pending.append((offset, depth))
        char = data[start + offset]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
    while pending and pending[-1][1] > depth:
        ends[pending.pop()[0]] = stop
    return ends


class _BoundedLinkScan:
    """getText and getLink of Python-Markdown's link processors, looking no further than the windows."""

    _window: tuple[str, int, list[int | None]] | None = None

    def getText(self, data: str, index: int) -> tuple[str, int, bool]:
        close = data.find("]", index, index + LINK_TEXT_WINDOW)
        if close == -1:
            return "", index, False
        if data.find("[", index, close) == -1:
            return data[index:close], close + 1, True
        # Nested brackets: the ends of one window serve every `[` in its first half,
        # so a run of brackets that never close costs each character once or twice.
        window = self._window
        if window is None or window[0] is not data or not window[1] <= index < window[1] + LINK_TEXT_WINDOW:
            window = self._window = (data, index, _bracket_ends(data, index, index + 2 * LINK_TEXT_WINDOW))
        end = window[2][index - window[1]]
        if end is None or end - index > LINK_TEXT_WINDOW:
            return "", index, False
        return data[index : end - 1], end, True

    def getLink(self, data: str, index: int) -> tuple[str, str | None, int, bool]:
        limit = index + LINK_TARGET_WINDOW
        if data.find(")", index, limit) == -1:
            return "", None, index, False
        return super().getLink(data if limit >= len(data) else data[:limit], index)


class _BoundedLink(_BoundedLinkScan, inlinepatterns.LinkInlineProcessor):
    pass


class _BoundedImage(_BoundedLinkScan, inlinepatterns.ImageInlineProcessor):
    pass


class _BoundedReference(_BoundedLinkScan, inlinepatterns.ReferenceInlineProcessor):
    pass


class _BoundedShortReference(_BoundedLinkScan, inlinepatterns.ShortReferenceInlineProcessor):
    pass


class _BoundedImageReference(_BoundedLinkScan, inlinepatterns.ImageReferenceInlineProcessor):
    pass


class _BoundedShortImageReference(_BoundedLinkScan, inlinepatterns.ShortImageReferenceInlineProcessor):
    pass


class _BoundedGitHubReading(Extension):
    def extendMarkdown(self, md):
        # Between fenced code (25), which sets code blocks aside, and md_in_html's block reader (20).
        md.preprocessors.register(_DetailsAsOnGitHub(md), "github_details", 22)
        # The names and priorities Python-Markdown registers its own link processors under.
        for processor, pattern, name, priority in [
            (_BoundedReference, inlinepatterns.REFERENCE_RE, "reference", 170),
            (_BoundedLink, inlinepatterns.LINK_RE, "link", 160),
            (_BoundedImage, inlinepatterns.IMAGE_LINK_RE, "image_link", 150),
            (_BoundedImageReference, inlinepatterns.IMAGE_REFERENCE_RE, "image_reference", 140),
            (_BoundedShortReference, inlinepatterns.REFERENCE_RE, "short_reference", 130),
            (_BoundedShortImageReference, inlinepatterns.IMAGE_REFERENCE_RE, "short_image_ref", 125),
        ]:
            md.inlinePatterns.register(processor(pattern, md), name, priority)
