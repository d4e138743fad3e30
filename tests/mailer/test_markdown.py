from mailer.markdown import render_markdown


def test_markdown_renders_code_tables_and_details():
    html = render_markdown(
        "**bold**\n\n```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "<details><summary>꼬리 질문</summary>\n\n- **follow** up\n\n</details>\n"
    )
    assert "<strong>bold</strong>" in html
    assert '<code class="language-python">' in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<details>" in html and "<summary>꼬리 질문</summary>" in html
    assert "<strong>follow</strong>" in html  # Markdown inside <details> is rendered too


def test_dangerous_html_never_survives():
    html = render_markdown(
        "<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n<img src=x onerror=alert(1)>\n\n"
        '<a href="https://ok.example" onclick="steal()">ok</a>\n\n<style>body{display:none}</style>\n\n'
        "<iframe src=https://evil.example></iframe>"
    )
    for needle in ["<script", "javascript:", "onerror", "onclick", "<style", "<iframe", "<img"]:
        assert needle not in html
    assert 'href="https://ok.example"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
