"""What SpamAssassin thinks of every mail DailyQ sends.

Each mail is scored as the bytes django-ses hands to SES
(`message.message().as_bytes()`), with Debian's `spamassassin -L -t`
(local rules only, no network), all of them in one run. Rules that only
fire because the message was never relayed (no Received headers, no DKIM
signature or SPF record to check) say nothing about the mail and are left
out; every other rule counts.
"""

import re
import shutil
import subprocess
from email import message_from_bytes

import pytest

from tests.conftest import service_missing
from tests.mailer.mail_samples import KINDS, every_mail

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 0.3
# What a message scored on this machine lacks that SES and the receiving
# server add: relays, DKIM signatures, SPF and DMARC results.
LOCAL_RUN_ARTIFACTS = re.compile(r"(T_)?(WEIRD_PORT|NO_RECEIVED|NO_RELAYS|(DKIM|SPF|DMARC)_\w+)")
RULE_ROW = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s")


def spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        service_missing("spamassassin is missing: apt-get install --no-install-recommends spamassassin")
    return found


def score(messages: dict[str, bytes], *, tmp_path) -> dict[str, list[tuple[str, float]]]:
    """The rules `spamassassin -L -t` reports for each message, as (rule, points), by the messages' keys."""
    prefs = tmp_path / "user_prefs"
    prefs.write_text("")  # nobody's own preferences or learned Bayes data
    paths, keys = [], {}
    for key, raw in messages.items():
        path = tmp_path / f"{key}.eml"
        path.write_bytes(raw)
        paths.append(str(path))
        keys[message_from_bytes(raw)["Message-ID"]] = key
    result = subprocess.run(
        [spamassassin(), "-L", "-t", "-x", "-p", str(prefs), "--cf=use_bayes 0", *paths],
        capture_output=True,
        check=True,
        timeout=300,
    )
    output = result.stdout.decode("utf-8", "replace")
    # Each message comes back whole, headed by the checker's header and followed by its report.
    reports = re.split(r"^(?=X-Spam-Checker-Version:)", output, flags=re.M)[1:]
    rules = {}
    for report in reports:
        message_id = re.search(r"^Message-ID: (\S+)", report, flags=re.M | re.I).group(1)
        table = report.split("Content analysis details:", 1)[1]
        rules[keys[message_id]] = [
            (m.group(2), float(m.group(1))) for m in map(RULE_ROW.match, table.splitlines()) if m
        ]
    assert set(rules) == set(messages), output
    return rules


@pytest.mark.parametrize("language", ["ko", "en"])
def test_no_mail_scores_above_the_limit_on_its_content_and_headers(language, eager_tasks, settings, tmp_path):
    spamassassin()
    mails = every_mail(language=language, settings=settings)
    assert set(mails) == set(KINDS)

    rules = score({kind: message.message().as_bytes() for kind, message in mails.items()}, tmp_path=tmp_path)

    over = {}
    for kind, fired in rules.items():
        counted = [(rule, points) for rule, points in fired if not LOCAL_RUN_ARTIFACTS.fullmatch(rule)]
        total = round(sum(points for _rule, points in counted), 3)
        if total > LIMIT:
            over[kind] = f"{total} points: " + ", ".join(f"{rule} {points}" for rule, points in fired)
    assert over == {}


def test_the_score_counts_what_spamassassin_flags(tmp_path):
    """The check above can fail: a mail with hidden low-contrast text scores HTML_FONT_LOW_CONTRAST."""
    spamassassin()
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives("Hello", "Hello there.", "a@example.org", ["b@example.org"])
    message.attach_alternative(
        '<html><body style="background-color:#ffffff"><p>Hello there.</p>'
        '<p style="color:#fefefe">cheap pills</p></body></html>',
        "text/html",
    )

    [(_key, fired)] = score({"sample": message.message().as_bytes()}, tmp_path=tmp_path).items()
    assert "HTML_FONT_LOW_CONTRAST" in dict(fired)
