"""One address, whatever its spelling.

Spellings of one address (case, needless quotes and escapes, the domain in
Unicode or IDNA form, surrounding blanks) canonicalise to one form, and every
door that takes an address (the subscribe form, the admin's CSV import, the
admin's add form, SES events) sees one subscriber for them. Near spellings
that are another mailbox or none (a local part with the dotted capital I,
the dotless i, the Kelvin sign or the long s) are refused. For any input, the
subscribe form never answers 500 and answers the same whether or not the
address, in any spelling, is known.
"""

import csv
import io
import re
import string
import uuid

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st

from mailer.feedback import record_ses_event
from mailer.models import Suppression
from mailer.selectors import is_suppressed
from mailer.suppressions import suppress_address
from subscriptions.addresses import canonical_email
from subscriptions.models import Subscriber
from tests.factories import make_subscriber
from tests.properties.strategies import emails, fuzz, is_valid_email

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = reverse("subscriptions:subscribe")
IMPORT = reverse("admin:subscriptions_subscriber_import")
ADD = reverse("admin:subscriptions_subscriber_add")
VALID_FORM = {"categories": ["backend"], "frequency": "daily", "consent": "on"}
EMPTY_INLINE = {
    "subscriptions-TOTAL_FORMS": "0",
    "subscriptions-INITIAL_FORMS": "0",
    "subscriptions-MIN_NUM_FORMS": "0",
    "subscriptions-MAX_NUM_FORMS": "1000",
}

# Letters with a non-ASCII twin whose case mapping lands on them.
TWINS = {"i": ["\u0130", "\u0131"], "k": ["\u212a"], "s": ["\u017f"], "I": ["\u0131"], "K": ["\u212a"]}

atoms = st.text(string.ascii_lowercase + string.digits + "!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=8)
locals_ = st.one_of(
    st.sampled_from(["alice", "kate", "sam", "victim", "first.last", "kiss+news"]),
    st.lists(atoms, min_size=1, max_size=3).map(".".join),
)
domains = st.sampled_from(["example.org", "bücher.example", "xn--bcher-kva.example", "例子.广告", "mail.example.co.kr"])
addresses = st.builds(lambda local, domain: f"{local}@{domain}", locals_, domains)


@st.composite
def spelling_of(draw, address: str) -> str:
    """Another spelling of the same address."""
    local, _at, domain = address.rpartition("@")
    local = "".join(char.upper() if draw(st.booleans()) else char for char in local)
    if draw(st.booleans()):
        escaped = "".join("\\" + char if draw(st.booleans()) else char for char in local)
        local = f'"{escaped}"'
    ascii_domain = domain.encode("idna").decode("ascii")
    unicode_domain = ascii_domain.encode("ascii").decode("idna")
    domain = draw(st.sampled_from([domain, ascii_domain, unicode_domain, ascii_domain.upper(), unicode_domain.upper()]))
    blank = st.sampled_from(["", " ", "\t", "\u3000", "  "])
    return draw(blank) + f"{local}@{domain}" + draw(blank)


@st.composite
def near_spelling_of(draw, address: str) -> str | None:
    """The address with a letter replaced by a non-ASCII twin, if it has such a letter."""
    local, _at, domain = address.rpartition("@")
    spots = [n for n, char in enumerate(local) if char in TWINS]
    if not spots:
        return None
    n = draw(st.sampled_from(spots))
    return local[:n] + draw(st.sampled_from(TWINS[local[n]])) + local[n + 1 :] + "@" + domain


def reset() -> None:
    Subscriber.objects.all().delete()
    Suppression.objects.all().delete()
    mail.outbox.clear()


@fuzz(200)
@given(address=addresses, data=st.data())
def test_spellings_of_an_address_have_one_canonical_form_and_near_spellings_none(address, data):
    canonical = canonical_email(address)
    assert canonical.isascii() and canonical == canonical.lower() and is_valid_email(canonical)
    assert canonical_email(canonical) == canonical
    assert canonical_email(data.draw(spelling_of(address))) == canonical
    near = data.draw(near_spelling_of(address))
    if near is not None:
        with pytest.raises(ValidationError):
            canonical_email(near)


@fuzz(300)
@given(emails)
def test_any_canonical_form_is_ascii_lower_case_valid_and_its_own(value):
    try:
        canonical = canonical_email(value)
    except ValidationError:
        return
    assert canonical.isascii() and canonical == canonical.lower()
    assert is_valid_email(canonical) and len(canonical) <= 254
    assert canonical_email(canonical) == canonical


# --- The doors ------------------------------------------------------------------------


def through_form(value: str, _admin_client) -> None:
    response = Client().post(SUBSCRIBE, {**VALID_FORM, "email": value}, REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 302


def through_csv_import(value: str, admin_client) -> None:
    text = io.StringIO()
    csv.writer(text).writerows([["email", "categories"], [value, "backend"]])
    preview = admin_client.post(IMPORT, {"file": SimpleUploadedFile("people.csv", text.getvalue().encode())})
    assert preview.status_code == 200
    assert admin_client.post(IMPORT, {"apply": "1", "already_consented": "on"}).status_code == 302


def through_admin_form(value: str, admin_client) -> None:
    data = {"email": value, "status": "active", "frequency": "daily", "language": "ko"} | EMPTY_INLINE
    response = admin_client.post(ADD, data)
    assert response.status_code in {200, 302}
    if response.status_code == 200:  # only ever for an address already there
        assert list(response.context["adminform"].form.errors) == ["email"]


def through_ses_complaint(value: str, _admin_client) -> None:
    detail = {"complainedRecipients": [{"emailAddress": value}]}
    message = {"eventType": "Complaint", "mail": {"messageId": uuid.uuid4().hex}, "complaint": detail}
    record_ses_event(notification={"MessageId": uuid.uuid4().hex}, message=message)


CREATING_DOORS = [through_form, through_csv_import, through_admin_form]
DOORS = [*CREATING_DOORS, through_ses_complaint]


@fuzz(60)
@given(
    address=addresses,
    data=st.data(),
    first=st.sampled_from(CREATING_DOORS),
    second=st.sampled_from(DOORS),
)
@example(address="kate@example.org", data=None, first=through_form, second=through_admin_form)
def test_every_door_sees_one_subscriber_for_spellings_of_one_address(
    admin_client, relaxed_limits, eager_tasks, settings, address, data, first, second
):
    settings.ADMINS = []
    reset()
    canonical = canonical_email(address)
    if data is None:  # the explicit example: two spellings fixed in advance
        one, other = "\u3000Kate@Example.org", '"k\\ate"@EXAMPLE.ORG'
    else:
        one, other = data.draw(spelling_of(address)), data.draw(spelling_of(address))

    first(one, admin_client)
    second(other, admin_client)

    [subscriber] = Subscriber.objects.all()
    assert subscriber.email == canonical
    for message in mail.outbox:
        assert message.to == [canonical]
    if second is through_ses_complaint:
        assert is_suppressed(email=canonical)
        assert list(Suppression.objects.values_list("email", flat=True)) == [canonical]
        assert subscriber.status != Subscriber.Status.ACTIVE


# --- Known or not, the same answer ------------------------------------------------------


def page_text(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def answer(value: str, client_ip: str) -> tuple:
    response = Client().post(SUBSCRIBE, {**VALID_FORM, "email": value}, REMOTE_ADDR=client_ip)
    assert response.status_code < 500
    return response.status_code, response.get("Location"), page_text(response)


@st.composite
def typed_and_known(draw) -> tuple[str, str]:
    """What a visitor types, and an address it may be taken for."""
    address = draw(addresses)
    kind = draw(st.sampled_from(["spelling", "near", "anything"]))
    if kind == "spelling":
        return draw(spelling_of(address)), address
    if kind == "near":
        return draw(near_spelling_of(address)) or address, address
    typed = draw(emails)
    try:
        return typed, canonical_email(typed)
    except ValidationError:
        return typed, address


@fuzz(80)
@given(pair=typed_and_known(), standing=st.sampled_from(["pending", "active", "unsubscribed", "suppressed"]))
@example(pair=("al\u0130ce@example.org", "alice@example.org"), standing="active")
@example(pair=("\u212aate@example.org", "kate@example.org"), standing="pending")
@example(pair=('"victim"@Example.org', "victim@example.org"), standing="active")
def test_the_subscribe_form_answers_alike_for_known_and_unknown_addresses(relaxed_limits, eager_tasks, pair, standing):
    typed, known = pair
    reset()
    unknown_answer = answer(typed, "192.0.2.1")

    reset()
    known = canonical_email(known)
    if standing == "active":
        make_subscriber(known)
    elif standing == "suppressed":
        make_subscriber(known)
        suppress_address(email=known, reason="admin")
    else:
        Subscriber.objects.create(email=known, status=standing)
    known_answer = answer(typed, "192.0.2.2")

    assert known_answer == unknown_answer
    assert Subscriber.objects.filter(email=known).count() == 1
