"""How long the worst known Markdown takes to render at the size bound (issue 14).

    .venv/bin/python -m bench.markdown                     # render_markdown, 20,000 characters
    .venv/bin/python -m bench.markdown --unbounded         # plain Python-Markdown beside it
    .venv/bin/python -m bench.markdown --size 8000 --unbounded

Each text is one unit repeated up to the size, rendered three times (the
median is printed; the render cache is bypassed). `--unbounded` also times
Python-Markdown with the same extensions but without DailyQ's bounded link
scanning, which is what ran before; at 20,000 characters some of those take
minutes. Figures: bench/README.md, and docs/bench-history.md, "Markdown".
"""

import argparse
import os
import statistics
import time

import django

UNITS = ["[", "[a](", "[a](b)", " [a](", "[a](<", "![", "[x][", "<a", "<http://", "***a", "<details>\n", "\\"]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")
    django.setup()
    import markdown

    from mailer.markdown import MAX_MARKDOWN_CHARS, _render

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=MAX_MARKDOWN_CHARS)
    parser.add_argument("--unbounded", action="store_true", help="also time plain Python-Markdown")
    args = parser.parse_args()

    def bounded(text: str) -> None:
        _render.__wrapped__(text, "")

    def unbounded(text: str) -> None:
        markdown.markdown(text, extensions=["fenced_code", "tables", "sane_lists", "md_in_html"])

    print(f"Markdown {markdown.__version__}, {args.size:,} characters, median of 3 (seconds)")
    print(f"{'unit':>14} {'render_markdown':>16}" + (f" {'Python-Markdown':>16}" if args.unbounded else ""))
    for unit in UNITS:
        text = (unit * (args.size // len(unit) + 1))[: args.size]
        row = f"{unit!r:>14} {median_seconds(bounded, text):>16.3f}"
        if args.unbounded:
            row += f" {median_seconds(unbounded, text):>16.3f}"
        print(row, flush=True)


def median_seconds(render, text: str) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        render(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
