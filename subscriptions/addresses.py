"""The one spelling of an email address that DailyQ stores, finds, limits and suppresses by.

Two spellings of one mailbox must never be two subscribers, two rate-limit
counters or a suppression that misses: every door turns what it is given
into this form first, and the database holds only this form.

- The local part must be ASCII: Amazon SES has no SMTPUTF8 and delivers to
  nothing else. This also shuts out the few non-ASCII letters whose case
  mapping lands on ASCII (the dotted capital I, the dotless i, the Kelvin
  sign, the long s), which made one address look like two.
- Within ASCII an address is compared without case, as mail providers do,
  so it is kept in lower case.
- A quoted local part that needs no quotes loses them ("a.b"@x is a.b@x);
  one that needs them keeps a single form, with only what must be escaped.
- The domain is kept in its IDNA (ASCII) form, lower-cased.
"""

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

MAX_EMAIL_LENGTH = 254

# Control and format characters (a quoted local part allows some) can never
# be put in a mail header.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*\Z", re.IGNORECASE)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\Z', re.DOTALL)
# What Django's validator takes inside quotes only when escaped.
_NEEDS_ESCAPE = re.compile(r'([\\" ])')


def _invalid() -> ValidationError:
    return ValidationError(_("Enter a valid email address."), code="invalid")


def _too_long() -> ValidationError:
    return ValidationError(
        _("An email address has at most %(max)d characters.") % {"max": MAX_EMAIL_LENGTH}, code="too_long"
    )


def canonical_email(value: str) -> str:
    """The canonical form of `value`, or ValidationError saying why it is not an address DailyQ can mail."""
    value = (value or "").strip()
    if any(unicodedata.category(char) in _UNSAFE_CATEGORIES for char in value):
        raise _invalid()
    if len(value) > MAX_EMAIL_LENGTH:
        raise _too_long()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise _invalid()
    if not local.isascii():
        raise ValidationError(
            _(
                "DailyQ can only mail addresses whose part before the @ is written in Latin letters, "
                "digits and symbols such as . _ - + (our mail service delivers to no others)."
            ),
            code="non_ascii_local_part",
        )
    try:
        domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise _invalid() from None
    address = f"{_local_part(local).lower()}@{domain}"
    if len(address) > MAX_EMAIL_LENGTH:
        raise _too_long()
    validate_email(address)
    return address


def _local_part(local: str) -> str:
    quoted = _QUOTED.match(local)
    if quoted is None:
        return local
    content = re.sub(r"\\(.)", r"\1", quoted.group(1), flags=re.DOTALL)
    if _DOT_ATOM.match(content):
        return content
    return '"' + _NEEDS_ESCAPE.sub(r"\\\1", content) + '"'


def address_hash(email: str) -> str:
    """A keyed hash (HMAC-SHA256, SUPPRESSION_HASH_KEY) of the address's canonical form.

    What DailyQ keeps of an erased address it must still refuse to mail: it
    tells that address apart without naming it. An address with no canonical
    form (stored before addresses were canonical) is hashed as it is.
    """
    try:
        key = canonical_email(email)
    except ValidationError:
        key = email
    return hmac.new(
        settings.SUPPRESSION_HASH_KEY.encode(), key.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


# Put in place of a string that named an erased address.
ERASED = "(erased)"


def redact_addresses(value, addresses: Iterable[str]):
    """`value` (JSON: an SES event) with every string that names one of `addresses` replaced by ERASED."""
    addresses = {address.lower() for address in addresses}
    if not addresses:
        return value
    return _redact(value, addresses)


def _redact(value, addresses: set[str]):
    if isinstance(value, str):
        lowered = value.lower()
        return ERASED if any(address in lowered for address in addresses) else value
    if isinstance(value, dict):
        return {key: _redact(item, addresses) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, addresses) for item in value]
    return value
