"""Markdown to safe HTML, for the web pages and the mail alike.

Question files come from imports anyone with admin access can run, so their
HTML is untrusted: it is rendered, then cleaned against an allowlist. Raw
HTML survives only where it is harmless (<details>/<summary> for follow-up
questions); scripts, styles, event handlers and javascript: links never do.
"""

import functools
import re

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "code", "pre", "kbd",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "details", "summary",
    "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}

# Python-Markdown leaves the inside of a raw HTML block alone; marking
# <details> lets its content (the follow-up questions) be Markdown too.
_DETAILS_OPEN = re.compile(r"<details(\s[^>]*)?>", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def render_markdown(text: str) -> SafeString:
    # Cached: a day's mail repeats a few questions thousands of times, and a
    # Markdown render (extensions loaded anew each call) is the costliest
    # step of building one (bench/README.md).
    text = _DETAILS_OPEN.sub('<details markdown="1">', text or "")
    html = markdown_lib.markdown(
        text, extensions=["fenced_code", "tables", "sane_lists", "md_in_html"], output_format="html"
    )
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # noqa: S308 (sanitised by nh3 just above)
