"""The local SES emulator and the two ways to read what it received."""

import signal
import subprocess
import sys
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.mail import EmailMultiAlternatives
from django.core.management import CommandError, call_command
from django.urls import reverse

from bench.harness import python_command, start_process
from mailer.emails import MAIL_HTML_POLICY
from tests.conftest import BASE_DIR, free_port


def send_sample(subject="오늘의 질문: HTTP/2", to="reader@example.org"):
    message = EmailMultiAlternatives(subject, "텍스트 본문입니다.\nSecond line.", to=[to])
    message.attach_alternative('<p style="color:#123">HTML <b>본문</b></p>', "text/html")
    message.send()
    return message.extra_headers["message_id"]


def test_mail_sent_through_django_ses_lands_in_the_emulator(ses):
    message_id = send_sample()
    [received] = ses.messages()
    assert received.id == message_id
    assert received.subject == "오늘의 질문: HTTP/2"
    assert received.to == "reader@example.org"
    assert received.text.startswith("텍스트 본문입니다.")
    assert "<b>본문</b>" in received.html


def test_emulator_rejects_an_unverified_sender_like_ses(ses):
    message = EmailMultiAlternatives("s", "t", from_email="stranger@unverified.example", to=["a@example.org"])
    with pytest.raises(ClientError, match="MessageRejected"):
        message.send()
    assert ses.messages() == []


def test_outbox_page_lists_newest_first_and_shows_each_part(client, ses, db):
    send_sample(subject="Subject-A")
    second = send_sample(subject="Subject-B")

    listing = client.get(reverse("dev:outbox"))
    body = listing.content.decode()
    assert body.index("Subject-B") < body.index("Subject-A")

    detail = client.get(reverse("dev:outbox-message", args=[second]))
    page = detail.content.decode()
    assert "텍스트 본문입니다." in page
    assert "reader@example.org" in page
    assert reverse("dev:outbox-message-html", args=[second]) in page

    html = client.get(reverse("dev:outbox-message-html", args=[second]))
    assert html.status_code == 200
    assert "<b>본문</b>" in html.content.decode()
    # The mail's HTML runs under its own strict policy, framed only by us.
    assert html["Content-Security-Policy"] == MAIL_HTML_POLICY
    assert html["X-Frame-Options"] == "SAMEORIGIN"


def test_outbox_page_answers_404_for_an_unknown_message(client, ses):
    assert client.get(reverse("dev:outbox-message", args=["nope"])).status_code == 404


def test_outbox_page_explains_when_the_emulator_is_down(client, ses, settings, db):
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    response = client.get(reverse("dev:outbox"))
    assert response.status_code == 200
    assert "does not answer" in response.content.decode()


def test_outbox_command_lists_and_shows_messages(ses, capsys):
    send_sample(subject="older")
    newest = send_sample(subject="newer")

    call_command("outbox")
    listing = capsys.readouterr().out
    assert "2 message(s)" in listing
    assert listing.index("newer") < listing.index("older")

    call_command("outbox", "--show", newest, "--html")
    shown = capsys.readouterr().out
    assert "Subject: newer" in shown
    assert "텍스트 본문입니다." in shown
    assert "<b>본문</b>" in shown


def test_outbox_command_errors_clearly(ses, settings):
    with pytest.raises(CommandError, match="No message 'missing'"):
        call_command("outbox", "--show", "missing")
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="does not answer"):
        call_command("outbox")


def test_outbox_refuses_when_real_ses_is_configured(settings):
    settings.SES_EMULATOR = False
    with pytest.raises(CommandError, match="sends through Amazon SES"):
        call_command("outbox")


@pytest.fixture
def emulator_process(tmp_path):
    port = free_port()
    process = start_process(
        "ses-emulator",
        python_command("manage.py", "ses_emulator", "--port", str(port), "--verify", "partner.example"),
        {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "DEFAULT_FROM_EMAIL": "DailyQ <news@dailyq.test>"},
        output=subprocess.PIPE,
        text=True,
    )
    first_line = process.stdout.readline()
    yield port, process, first_line
    if process.poll() is None:
        process.kill()
        process.wait()


def test_ses_emulator_command_starts_with_the_sender_verified(emulator_process):
    port, process, first_line = emulator_process
    assert "verified: news@dailyq.test, partner.example" in first_line
    client = boto3.client(
        "ses",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    raw = b"From: DailyQ <news@dailyq.test>\r\nTo: a@example.org\r\nSubject: hi\r\n\r\nbody"
    client.send_raw_email(Source="news@dailyq.test", Destinations=["a@example.org"], RawMessage={"Data": raw})
    client.send_raw_email(Source="any@partner.example", Destinations=["a@example.org"], RawMessage={"Data": raw})
    with pytest.raises(ClientError, match="MessageRejected"):
        client.send_raw_email(Source="x@elsewhere.example", Destinations=["a@example.org"], RawMessage={"Data": raw})

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert "stopped" in process.stdout.read()


def test_ses_emulator_command_refuses_a_port_in_use(emulator_process, tmp_path):
    port, _, _ = emulator_process
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", "ses_emulator", "--port", str(port)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path)},
    )
    assert result.returncode != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert time.monotonic() - started < 30
