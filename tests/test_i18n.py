from django.urls import reverse


def test_pages_are_korean_by_default_and_english_on_request(client, db):
    korean = client.get(reverse("subscriptions:landing")).content.decode()
    english = client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ko">' in korean and "구독하기" in korean
    assert '<html lang="en">' in english and "Subscribe" in english and "구독하기" not in english


def test_language_switch_sticks(client, db):
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert '<html lang="en">' in page
