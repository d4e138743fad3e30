"""Shared Hypothesis strategies, settings and checks for the property tests.

Examples are kept moderate so the whole properties suite runs in about a
minute on a small machine. Under CI=true the examples are derandomized (the
same ones every run: CI never turns red by chance); locally every run
explores new ones.
"""

import email
import itertools
import string
from email import policy
from email.utils import getaddresses

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains as dns_domains

from subscriptions.addresses import canonical_email
from tests.conftest import IN_CI


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=IN_CI,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


_unique = itertools.count(1)


def unique(prefix: str = "p") -> str:
    """A name no other example of this run uses."""
    return f"{prefix}{next(_unique)}"


# --- Addresses --------------------------------------------------------------------

# str.splitlines() (and so Python's email header folding) breaks lines at these
# ASCII controls too. Django's validator lets them into a quoted local part;
# test_forms.py has the property about them (they are refused); the others leave them out.
LINE_BREAKING_CONTROLS = "\x0b\x0c\x1c\x1d\x1e"

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
QTEXT = "".join(chr(i) for i in range(1, 128) if chr(i) not in '"\\\r\n' + LINE_BREAKING_CONTROLS)

IDN_DOMAINS = [
    "bücher.example",
    "例子.广告",
    "пример.испытание",
    "ドメイン.テスト",
    "xn--bcher-kva.example",
    "EXAMPLE.ORG",
    "Straße.example",
    "example。com",  # an ideographic full stop, which IDNA reads as a dot
    "ex\u200bample.com",  # a zero-width space
    "example.com.",
    "a..b.example",
    "-bad-.example",
    "a" * 64 + ".example",
    "localhost",
    "[192.0.2.1]",
    "",
]

INJECTIONS = [
    "\r\nBcc: evil@evil.example",
    "\nBcc: evil@evil.example",
    "\rCc: evil@evil.example",
    "\r\n\r\nInjected body",
    "%0d%0aBcc:evil@evil.example",
    "\u2028Bcc: evil@evil.example",
    "\x85Cc: evil@evil.example",
    ">, evil@evil.example",
    ", evil@evil.example",
    "\x00",
    "\t",
]

atoms = st.text(ATEXT, min_size=1, max_size=20)
dot_atom_local = st.lists(atoms, min_size=1, max_size=4).map(".".join)
quoted_local = st.lists(
    st.one_of(st.sampled_from(QTEXT), st.sampled_from(QTEXT).map(lambda c: "\\" + c)), max_size=20
).map(lambda parts: '"' + "".join(parts) + '"')
unicode_local = st.text(st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), min_size=1, max_size=20)
local_parts = st.one_of(dot_atom_local, quoted_local, unicode_local)
domains = st.one_of(dns_domains(), st.sampled_from(IDN_DOMAINS))


def _with_length(total: int) -> str:
    domain = "@example.com"
    return "a" * (total - len(domain)) + domain


def _insert(base: str, payload: str, position: int) -> str:
    position %= len(base) + 1
    return base[:position] + payload + base[position:]


plain_emails = st.one_of(st.emails(), st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains))
lengthy_emails = st.sampled_from([64, 253, 254, 255, 256, 300, 999, 1000, 1001, 5000]).map(_with_length)
whitespace = st.text(" \t\u00a0\u3000\u2003\ufeff", max_size=3)

emails = st.one_of(
    plain_emails,
    lengthy_emails,
    st.builds(_insert, plain_emails, st.sampled_from(INJECTIONS), st.integers(0, 400)),
    st.builds(lambda a, b, c: a + b + c, whitespace, plain_emails, whitespace),
    st.text(max_size=60).filter(lambda text: not any(c in text for c in LINE_BREAKING_CONTROLS)),
)


# Addresses Django's validator takes as they are (before any trimming).
valid_emails = st.one_of(
    st.emails(),
    st.builds(lambda local, domain: f"{local}@{domain}", dot_atom_local, dns_domains()),
    st.sampled_from(["reader@bücher.example", "a" * 242 + "@example.com", '"two\\ words"@example.org']),
).filter(lambda value: is_valid_email(value))


def normalized(value: str) -> str | None:
    try:
        return canonical_email(value)
    except ValidationError:
        return None


def is_valid_email(value: str) -> bool:
    if not isinstance(value, str) or len(value) > 254:
        return False
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


# --- Mail ---------------------------------------------------------------------------


def assert_mail_is_safe(message, recipient: str) -> None:
    """One recipient, a one-line subject, and no header smuggled into the raw message."""
    assert message.to == [recipient]
    assert message.cc == [] and message.bcc == []
    assert message.recipients() == [recipient]
    assert not any(char in message.subject for char in "\r\n\0")
    raw = message.message().as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    names = [name.lower() for name in parsed]
    assert "bcc" not in names and "cc" not in names, names
    for name in ("to", "from", "subject"):
        assert names.count(name) == 1, (name, names)
    assert len(getaddresses(parsed.get_all("To"))) == 1
    assert "\n" not in str(parsed["Subject"])


# --- Odd JSON-ish values ---------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
