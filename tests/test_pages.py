from django.urls import reverse


def test_landing_page_says_what_dailyq_is(client):
    response = client.get(reverse("subscriptions:landing"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "DailyQ" in page
    assert '<meta name="viewport"' in page


def test_pages_carry_the_security_headers(client):
    response = client.get(reverse("subscriptions:landing"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_admin_login_is_served_at_the_configured_path(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "'unsafe-inline'" in response["Content-Security-Policy"]


def test_admin_login_attempts_are_limited_per_username(client, db):
    for _ in range(10):
        response = client.post("/admin/login/", {"username": "admin", "password": "wrong"})
        assert response.status_code == 200
    blocked = client.post("/admin/login/", {"username": "ADMIN", "password": "wrong"})
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    # Another username from elsewhere is not blocked by this one.
    other = client.post("/admin/login/", {"username": "editor", "password": "x"}, REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 200


def test_dev_outbox_lists_each_mail_once_in_its_table(client, ses, settings):
    from django.core.mail import send_mail

    send_mail("Only-in-the-table", "body", settings.DEFAULT_FROM_EMAIL, ["reader@example.org"])

    page = client.get(reverse("dev:outbox")).content.decode()

    # The site's flash messages (base.html) and the outbox's mails are different lists.
    assert 'class="messages"' not in page
    assert "OutboxMessage" not in page
    assert page.count("Only-in-the-table") == 1
    assert "<td>reader@example.org</td>" in page
