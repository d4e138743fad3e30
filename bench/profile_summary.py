"""Summarise a py-spy profile in its raw (collapsed stacks) format.

    py-spy record --format raw -o var/bench/profile.txt --pid PID --duration 20
    python -m bench.profile_summary var/bench/profile.txt

Prints where the sampled (non-idle) time went: the share of samples under
a few named parts of the send path (inclusive), and the top functions by
inclusive and by self time. py-spy only sees Python frames: time in a C or
Rust extension (css_inline, psycopg2, the ssl and socket modules) counts
for the Python function that called it.
"""

import argparse
import re
from collections import Counter
from pathlib import Path

# Parts of the send path, matched against each frame "Class.function (file:line)".
PARTS = [
    ("inside send_delivery_batch (the task)", r"send_delivery_batch \(.*mailer/sending/batch\.py"),
    ("  SES connection per batch (SESBackend.open: boto3 Session + client)", r"SESBackend\.open \("),
    ("  per message: _send_one", r"(^|\.)_send_one \("),
    ("    build_daily_email (render + build the message)", r"(^|\.)build_daily_email \("),
    ("      render_email (templates, CSS inlining)", r"(^|\.)render_email \(.*mailer/emails"),
    ("        Django template engine (Template.render)", r"Template\.render \(.*django/template/base"),
    ("        css_inline (CSSInliner.inline, Rust: render_email's line calling it)", "{css_inline_line}"),
    ("      render_markdown (question Markdown -> HTML)", r"(^|\.)render_markdown \("),
    ("      signed links (manage_url / unsubscribe_url)", r"(^|\.)(manage_url|unsubscribe_url) \("),
    ("      url reversing (django.urls.reverse)", r"(^|\.)reverse \(.*django/urls/base"),
    ("    pacer (Pacer.wait_for_slot: Redis EVALSHA)", r"Pacer\.wait_for_slot \("),
    ("    django-ses send_messages", r"SESBackend\.send_messages \("),
    ("      dkim_sign (a failing `import dkim` per message)", r"(^|\.)dkim_sign \("),
    ("      MIME serialisation (EmailMessage.message, as_bytes)", r"(EmailMessage\.message|get_message_bytes) \("),
    ("      botocore API call (BaseClient._make_api_call)", r"BaseClient\._make_api_call \("),
    ("        request signing (SigV4)", r"SigV4Auth\.add_auth \("),
    ("        HTTP round trip (Endpoint._send)", r"Endpoint\._send \("),
    ("        response parsing", r"Parser\.parse \(.*botocore/parsers"),
    ("  database (CursorWrapper.execute*)", r"CursorWrapper\.(execute|executemany|_execute) \("),
    ("  ORM row -> model (QuerySet._fetch_all)", r"QuerySet\._fetch_all \("),
    ("  bulk_update", r"QuerySet\.bulk_update \("),
    ("  finish_run_if_complete", r"(^|\.)finish_run_if_complete \("),
]
OUTSIDE_TASK = "outside any task (Celery consumer, kombu, pool bookkeeping)"
TASK_FRAME = re.compile(r"send_delivery_batch \(|fast_trace_task \(|trace_task \(")


def _css_inline_pattern() -> str:
    """Frames of render_email at the line that calls the (native) CSS inliner."""
    source = Path(__file__).resolve().parent.parent / "mailer" / "emails.py"
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
        number = next(n for n, line in enumerate(lines, start=1) if "_inliner.inline(" in line)
    except (OSError, StopIteration):
        return r"^$never"
    return rf"render_email \(.*mailer/emails\.py:{number}\)"


def parse(path: str) -> list[tuple[list[str], int]]:
    stacks = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _space, count = line.rpartition(" ")
            try:
                samples = int(count)
            except ValueError:
                continue
            frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
            stacks.append((frames, samples))
    return stacks


def _short(frame: str) -> str:
    # "render (django/template/base.py:171)" -> "render (django/template/base.py)"
    match = re.match(r"^(.*?) \((.*?)(:\d+)?\)$", frame)
    if not match:
        return frame
    function, filename = match.group(1), match.group(2)
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{function} ({filename})"


def summarize(path: str, top: int = 25) -> str:
    stacks = parse(path)
    total = sum(samples for _frames, samples in stacks)
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples"]
    lines.append("")
    lines.append("Share of samples under each part of the send path (inclusive):")
    for label, pattern in PARTS:
        regex = re.compile(_css_inline_pattern() if pattern == "{css_inline_line}" else pattern)
        hit = sum(samples for frames, samples in stacks if any(regex.search(f) for f in frames))
        lines.append(f"  {100 * hit / total:5.1f}%  {label}")
    outside = sum(samples for frames, samples in stacks if not any(TASK_FRAME.search(f) for f in frames))
    lines.append(f"  {100 * outside / total:5.1f}%  {OUTSIDE_TASK}")
    inclusive: Counter = Counter()
    own: Counter = Counter()
    for frames, samples in stacks:
        names = [_short(frame) for frame in frames]
        for name in set(names):
            inclusive[name] += samples
        if names:
            own[names[-1]] += samples
    lines.append("")
    lines.append(f"Top {top} functions by inclusive time:")
    for name, samples in inclusive.most_common(top):
        lines.append(f"  {100 * samples / total:5.1f}%  {name}")
    lines.append("")
    lines.append(f"Top {top} functions by self time:")
    for name, samples in own.most_common(top):
        lines.append(f"  {100 * samples / total:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.path, args.top))


if __name__ == "__main__":
    main()
