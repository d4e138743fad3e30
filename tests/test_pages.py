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
