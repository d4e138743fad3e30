"""The fake SES endpoint the benchmark and the fault tests count mail with.

Its count is what those tests judge "nothing lost, nothing doubled" by, so a
request SES would never have taken must not be counted.
"""

import base64
import http.client
import json
import socket
import time

import pytest

from bench.fake_ses import FakeSES

RAW = b"From: q@dailyq.test\r\nTo: Reader <reader@example.com>\r\nSubject: Today's question\r\n\r\nHello\r\n"


@pytest.fixture
def fake():
    server = FakeSES(latency=0).start()
    yield server
    server.stop()


def send_v2(fake, payload: dict):
    host, port = fake._server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request(
        "POST", "/v2/email/outbound-emails", json.dumps(payload), {"Content-Type": "application/json"}
    )  # fmt: skip
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return response.status, body, response.headers.get("x-amzn-ErrorType")


def raw_content(raw: bytes = RAW) -> dict:
    return {"Raw": {"Data": base64.b64encode(raw).decode()}}


def test_a_request_cut_off_by_a_dying_client_is_not_counted(fake):
    payload = json.dumps({"Destination": {"ToAddresses": ["reader@example.com"]}, "Content": raw_content()}).encode()
    head = (
        f"POST /v2/email/outbound-emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    for sent_of_body in (0, len(payload) // 2):  # killed after the headers; killed mid-body
        with socket.create_connection(fake._server.server_address[:2]) as client:
            client.sendall(head + payload[:sent_of_body])
        time.sleep(0.2)
    assert fake.accepted == []
    assert fake.calls == 0
    # A whole request on the same server is still taken.
    status, body, _ = send_v2(fake, {"Destination": {"ToAddresses": ["reader@example.com"]}, "Content": raw_content()})
    assert status == 200
    assert [m["id"] for m in fake.accepted] == [body["MessageId"]]


def test_without_destinations_the_message_headers_name_the_recipients(fake):
    status, _, _ = send_v2(fake, {"Content": raw_content()})
    assert status == 200
    assert fake.accepted[0]["to"] == ["reader@example.com"]


def test_a_message_with_no_recipient_at_all_is_refused(fake):
    status, _, error = send_v2(fake, {"Content": raw_content(RAW.replace(b"To: Reader <reader@example.com>\r\n", b""))})
    assert (status, error) == (400, "BadRequestException")
    assert fake.accepted == []
    assert fake.refused == ["no_recipient"]
