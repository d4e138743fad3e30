"""render_markdown on arbitrary text mixed with hostile HTML: whatever goes in,
no script, style, frame, event handler or javascript: link comes out."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from mailer.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render_markdown
from tests.properties.strategies import fuzz

FRAGMENTS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<style>body{display:none}</style>",
    "<iframe src=https://evil.example></iframe>",
    "<img src=x onerror=alert(1)>",
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
    for needle in ("<script", "<style", "<iframe", "<object", "<embed", "<svg", "<math", "<img", "<form", "<base"):
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


@fuzz(250)
@given(documents)
@example("<details open ontoggle=alert(1)><summary onclick=x>q</summary>\n\n[x](javascript:alert(1))\n\n</details>")
@example("<a href='&#106;avascript:alert(1)'>x</a><scr<script>ipt>alert(1)</script>")
@example('<svg onload=alert(1)><noscript><p title="</noscript><img src=x onerror=alert(1)>">')
def test_rendered_markdown_never_carries_active_content(text):
    assert_safe(str(render_markdown(text)))


@fuzz(4)
@given(fragment=st.sampled_from(FRAGMENTS), size=st.sampled_from([100_000, 300_000]))
def test_huge_documents_render_safely(fragment, size):
    text = (fragment + "\n\nSome **text** with [a link](https://ok.example).\n\n") * (size // (len(fragment) + 50))
    assert_safe(str(render_markdown(text)))
