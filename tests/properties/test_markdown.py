"""render_markdown on arbitrary text mixed with hostile HTML: whatever goes in,
no script, style, frame, event handler or javascript: link comes out, an
image only from an https address (lazily, with an alt text), and whatever the
cleaning took out is named by list_markdown_changes."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from mailer.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    MAX_MARKDOWN_CHARS,
    list_markdown_changes,
    render_markdown,
)
from tests.properties.strategies import fuzz

FRAGMENTS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<style>body{display:none}</style>",
    "<iframe src=https://evil.example></iframe>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://images.example/a.png" onerror="alert(1)">',
    '<img src="https://images.example/a.png" alt="">',
    '<img src="http://images.example/a.png" alt="x">',
    '<img src="java&#x09;script:alert(1)" alt="x">',
    "![alt](https://images.example/a.png)",
    '![](https://images.example/a.png "title")',
    "![x](//images.example/a.png)",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "[rel](contents/be-2.md)",
    "<details>\n    <summary>indented</summary>\n\n**a**\n\n</details>",
    "<details>\n\n    <summary>code</summary>\n",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<a href='&#106;avascript:alert(1)'>x</a>",
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="https://ok.example" onclick="steal()">ok</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]: javascript:alert(1)\n\n[x]",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<details>",
    "</details>",
    "<summary onclick=alert(1)>more</summary>",
    '<details markdown="1"><summary>q</summary>\n\n- **a**\n\n</details>',
    '<div markdown="1" onmouseover="x">',
    "<object data=x></object>",
    "<embed src=x>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<base href=//evil.example/>",
    "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
    "<link rel=stylesheet href=//evil.example/x.css>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    '<table><tr><td style="background:url(javascript:alert(1))">x</td></tr></table>',
    '<code class="x" onclick="y">c</code>',
    "<!-- <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "```\n<script>alert(1)</script>\n```",
    "    <script>indented code</script>",
    "| a | b |\n|---|---|\n| <script>x</script> | [x](javascript:y) |\n",
    "> <iframe src=x>",
    "- <style>li{}</style>",
    "<",
    ">",
    '"',
    "\n\n",
    "\x00",
]
documents = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=12).map("".join)

SAFE_SCHEMES = {"http", "https", "mailto", ""}
# nh3 (ammonia) keeps these on every allowed tag unless told otherwise; inert text.
GENERIC_ATTRIBUTES = {"title", "lang"}


class Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_safe(output: str) -> None:
    lowered = output.lower()
    for needle in ("<script", "<style", "<iframe", "<object", "<embed", "<svg", "<math", "<form", "<base"):
        assert needle not in lowered, needle
    # In markup only: text (escaped) and attribute values (quoted) may well say "onclick=" or
    # "javascript:" harmlessly, e.g. a title="&lt;img onerror=...&gt;" left by nh3.
    for tag in re.findall(r"<[^>]*>", output):
        markup = re.sub(r"\"[^\"]*\"|'[^']*'", '""', tag)
        assert not re.search(r"\son\w+\s*=", markup, re.IGNORECASE), tag
        assert "javascript:" not in markup.lower(), tag
    parser = Collector()
    parser.feed(output)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | GENERIC_ATTRIBUTES | ({"rel"} if tag == "a" else set())
        for name, value in attrs:
            assert name in allowed, (tag, name)
            if name == "href":
                cleaned = re.sub(r"[\x00-\x20]", "", value or "")
                assert urlsplit(cleaned).scheme.lower() in SAFE_SCHEMES, value
        if tag == "img":
            values = dict(attrs)
            assert urlsplit(values.get("src") or "").scheme == "https", attrs
            assert values.get("loading") == "lazy" and (values.get("alt") or "").strip(), attrs


@fuzz(250)
@given(documents)
@example("<details open ontoggle=alert(1)><summary onclick=x>q</summary>\n\n[x](javascript:alert(1))\n\n</details>")
@example("<a href='&#106;avascript:alert(1)'>x</a><scr<script>ipt>alert(1)</script>")
@example('<svg onload=alert(1)><noscript><p title="</noscript><img src=x onerror=alert(1)>">')
def test_rendered_markdown_never_carries_active_content(text):
    assert_safe(str(render_markdown(text)))


@fuzz(6)
@given(fragment=st.sampled_from(FRAGMENTS), size=st.sampled_from([MAX_MARKDOWN_CHARS, 100_000, 300_000]))
def test_huge_documents_render_safely(fragment, size):
    unit = fragment + "\n\nSome **text** with [a link](https://ok.example).\n\n"
    text = (unit * (size // len(unit) + 1))[:size]
    assert_safe(str(render_markdown(text)))


# Each is taken out (or, for an outside image, shown) whatever surrounds it, outside code.
CHANGED = [
    "<script>alert(1)</script>",
    "<iframe src=https://evil.example></iframe>",
    '<a href="https://ok.example" onclick="steal()">ok</a>',
    "[x](javascript:alert(1))",
    "[x](contents/be-2.md)",
    "![x](http://images.example/a.png)",
    "![x](https://images.example/a.png)",
    '<div style="display:none">hidden</div>',
]
prose = st.text(st.characters(exclude_characters="<>[]()!`~*_&\\|#-+=:.\x00", exclude_categories=("Cs",)), max_size=40)


@fuzz(100)
@given(before=prose, fragment=st.sampled_from(CHANGED), after=prose)
@example(before="", fragment="[x](contents/be-2.md)", after="")
def test_what_the_page_changes_is_always_named(before, fragment, after):
    text = f"{before}\n\n{fragment}\n\n{after}\n"
    assert list_markdown_changes(text), text
    assert not list_markdown_changes(f"{before}\n\n{after}\n")
