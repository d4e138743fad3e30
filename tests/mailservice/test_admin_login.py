"""Password guessing at the admin login: counted per client and per (username, client),
never so that someone else's guesses lock the real admin out."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.66"
ADMIN_HOME = "198.51.100.7"
PASSWORD = "the real password"
# "victimadmin" in full-width letters: Django's login form reads it (NFKC) as victimadmin.
FULL_WIDTH = "".join(chr(ord(letter) + 0xFEE0) for letter in "victimadmin")


@pytest.fixture
def admin_user(django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for many tries
    return django_user_model.objects.create_superuser("victimadmin", "admin@example.org", PASSWORD)


def log_in(username: str, password: str, address: str) -> tuple[int, bool]:
    client = Client()
    response = client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)
    return response.status_code, "_auth_user_id" in client.session


def test_guesses_from_one_address_do_not_lock_the_admin_out_from_another(admin_user):
    for _ in range(30):
        log_in("victimadmin", "wrong", ATTACKER)
    assert log_in("victimadmin", PASSWORD, ADMIN_HOME) == (302, True)


def test_a_locked_username_stays_locked_in_any_spelling_django_reads_as_it(admin_user):
    for _ in range(4):
        assert log_in("victimadmin", "wrong", ATTACKER) == (200, False)
    assert log_in("victimadmin", "wrong", ATTACKER) == (429, False)  # the fifth locks
    for spelling in ("victimadmin", FULL_WIDTH, "VictimAdmin"):
        status, logged_in = log_in(spelling, PASSWORD, ATTACKER)
        assert (status, logged_in) == (429, False), spelling


def test_wrong_tries_in_other_spellings_count_for_the_same_username(admin_user):
    for spelling in ("victimadmin", FULL_WIDTH, "VICTIMADMIN", FULL_WIDTH, "victimadmin"):
        log_in(spelling, "wrong", ATTACKER)
    assert log_in("victimadmin", PASSWORD, ATTACKER) == (429, False)


def test_one_address_guessing_across_usernames_is_stopped(admin_user):
    for n in range(19):
        assert log_in(f"user{n}", "wrong", ATTACKER)[0] == 200
    assert log_in("user19", "wrong", ATTACKER)[0] == 429  # the twentieth locks
    status, logged_in = log_in("victimadmin", PASSWORD, ATTACKER)
    assert (status, logged_in) == (429, False)
    assert log_in("victimadmin", PASSWORD, ADMIN_HOME) == (302, True)


def test_a_locked_out_client_is_told_when_to_come_back(admin_user):
    for _ in range(5):
        log_in("victimadmin", "wrong", ATTACKER)
    response = Client().post("/admin/login/", {"username": "victimadmin", "password": "x"}, REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert "15분" in response.content.decode()  # in Korean, the default language


def test_addresses_of_one_ipv6_network_count_as_one_client(admin_user):
    for n in range(20):
        log_in("victimadmin", "wrong", f"2001:db8:1:2::{n + 1:x}")
    assert log_in("victimadmin", PASSWORD, "2001:db8:1:2::ffff") == (429, False)
    assert log_in("victimadmin", PASSWORD, "2001:db8:1:3::1") == (302, True)
