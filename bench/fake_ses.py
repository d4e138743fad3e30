"""A small stand-in for the SES API, for benchmarks and fault tests.

moto is the SES emulator for correctness; it is too slow to measure a sender
against and never throttles. This server answers the calls DailyQ makes
(SES v1 SendRawEmail, GetSendQuota and an empty ListIdentities, SESv2
SendEmail with raw content and GetAccount) with a chosen
latency, and can answer a chosen share of sends with throttling or server
errors, or with a scripted list of errors. It counts what it accepted, with
the configuration set and message tags each send named, and writes the Send
event SES's event publishing would publish for it (`send_event`).

    server = FakeSES(latency=0.05, throttle_rate=0.3).start()
    ... AWS_SES_REGION_ENDPOINT_URL=server.url ...
    server.accepted  # messages accepted
    server.send_event(server.accepted[0])  # {"eventType": "Send", "mail": {...}}
    server.stop()

Run alone: python -m bench.fake_ses --port 4580 --latency 0.05
"""

import argparse
import base64
import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

NS = "http://ses.amazonaws.com/doc/2010-12-01/"

ERRORS = {
    "throttling": (400, "Sender", "Throttling", "Maximum sending rate exceeded."),
    "server": (500, "Receiver", "InternalFailure", "An internal error occurred."),
    "rejected": (400, "Sender", "MessageRejected", "Email address is not verified."),
    "quota": (400, "Sender", "Throttling", "Daily message quota exceeded."),
    "paused": (400, "Sender", "AccountSendingPausedException", "Sending paused for this account."),
    "no_recipient": (400, "Sender", "InvalidParameterValue", "Missing required header 'To'."),
}
# The same errors as SESv2 (REST + JSON) answers them: status, error type, message.
ERRORS_V2 = {
    "throttling": (429, "TooManyRequestsException", "Maximum sending rate exceeded."),
    "server": (500, "InternalFailure", "An internal error occurred."),
    "rejected": (400, "MessageRejected", "Email address is not verified."),
    "quota": (429, "LimitExceededException", "Daily message quota exceeded."),
    "paused": (400, "SendingPausedException", "Sending paused for this account."),
    "no_recipient": (400, "BadRequestException", "Missing required header 'To'."),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client killed mid-call (the fault tests do it on purpose) is not an error of the server.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeSES:
    def __init__(
        self,
        *,
        latency: float = 0.05,
        throttle_rate: float = 0.0,
        error_rate: float = 0.0,
        max_send_rate: float = 14.0,
        max_24_hour_send: float = 50000.0,
        production_access: bool | None = True,
        seed: int | None = None,
    ):
        self.latency = latency
        self.throttle_rate = throttle_rate
        self.error_rate = error_rate
        self.max_send_rate = max_send_rate
        self.max_24_hour_send = max_24_hour_send
        self.production_access = production_access  # None: GetAccount is not implemented
        self.script: list[str] = []  # error names answered to the next sends, in order
        self.on_accept = None  # called with each accepted message before SES answers (tests break things there)
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.accepted: list[dict] = []
        self.refused: list[str] = []
        self.calls = 0
        self.connections = 0  # TCP connections opened to it
        self._server = None

    # -- lifecycle --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeSES":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's
            # algorithm holds the second for ~40 ms on every call.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.connections += 1

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self._server = _Server((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- requests --

    def _handle(self, request, method):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-request (a killed worker): SES never
            # gets a request that was cut off, so it is neither sent nor answered.
            request.close_connection = True
            return None
        if method == "GET" and request.path.startswith("/v2/email/account"):
            return self._get_account(request)
        if method == "POST" and request.path.startswith("/v2/email/outbound-emails"):
            return self._send_email_v2(request, json.loads(body or b"{}"))
        params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        action = params.get("Action")
        if action == "GetSendQuota":
            sent = len(self.accepted)
            return self._xml(
                request,
                200,
                f"<GetSendQuotaResponse xmlns='{NS}'><GetSendQuotaResult>"
                f"<SentLast24Hours>{sent}.0</SentLast24Hours><Max24HourSend>{self.max_24_hour_send}</Max24HourSend>"
                f"<MaxSendRate>{self.max_send_rate}</MaxSendRate></GetSendQuotaResult>"
                f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></GetSendQuotaResponse>",
            )
        if action == "SendRawEmail":
            return self._send_raw_email(request, params)
        if action == "ListIdentities":  # none: this fake verifies nothing
            return self._xml(
                request,
                200,
                f"<ListIdentitiesResponse xmlns='{NS}'><ListIdentitiesResult><Identities/></ListIdentitiesResult>"
                f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></ListIdentitiesResponse>",
            )
        return self._error(request, (400, "Sender", "InvalidAction", f"Unsupported action {action}"))

    def _send_raw_email(self, request, params):
        destinations = [v for k, v in sorted(params.items()) if k.startswith("Destinations.member.")]
        tags = {
            params[f"Tags.member.{n}.Name"]: params.get(f"Tags.member.{n}.Value", "")
            for n in range(1, 51)
            if f"Tags.member.{n}.Name" in params
        }
        outcome = self._send(
            destinations,
            params.get("RawMessage.Data", ""),
            tags=tags,
            configuration_set=params.get("ConfigurationSetName"),
        )
        if outcome in ERRORS:
            return self._error(request, ERRORS[outcome])
        return self._xml(
            request,
            200,
            f"<SendRawEmailResponse xmlns='{NS}'><SendRawEmailResult><MessageId>{outcome}</MessageId>"
            f"</SendRawEmailResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            f"</ResponseMetadata></SendRawEmailResponse>",
        )

    def _send_email_v2(self, request, params):
        destinations = params.get("Destination", {}).get("ToAddresses", [])
        tags = {tag.get("Name", ""): tag.get("Value", "") for tag in params.get("EmailTags", [])}
        outcome = self._send(
            destinations,
            params.get("Content", {}).get("Raw", {}).get("Data", ""),
            tags=tags,
            configuration_set=params.get("ConfigurationSetName"),
        )
        if outcome in ERRORS_V2:
            status, code, message = ERRORS_V2[outcome]
            body = json.dumps({"message": message}).encode()
            headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
            return self._reply(request, status, "application/json", body, headers)
        body = json.dumps({"MessageId": outcome}).encode()
        return self._reply(request, 200, "application/json", body, {"x-amzn-RequestId": str(uuid.uuid4())})

    def _send(
        self,
        destinations: list[str],
        raw_base64: str,
        *,
        tags: dict | None = None,
        configuration_set: str | None = None,
    ) -> str:
        """Accept or refuse one message; returns its message id, or the error's name."""
        arrived = time.time()
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.calls += 1
            error = self.script.pop(0) if self.script else None
            if error is None:
                roll = self.random.random()
                if roll < self.throttle_rate:
                    error = "throttling"
                elif roll < self.throttle_rate + self.error_rate:
                    error = "server"
            if error:
                self.refused.append(error)
        if error:
            return error
        raw = base64.b64decode(raw_base64)
        headers = message_from_bytes(raw)
        if not destinations:
            # Like SES: without explicit destinations, the message's own headers name them.
            fields = [v for name in ("To", "Cc", "Bcc") for v in headers.get_all(name, [])]
            destinations = [address for _, address in getaddresses(fields) if address]
        if not destinations:
            with self.lock:
                self.refused.append("no_recipient")
            return "no_recipient"
        message_id = f"fake-{uuid.uuid4().hex}"
        with self.lock:
            self.accepted.append(
                {
                    "id": message_id,
                    "to": destinations,
                    "subject": str(headers.get("Subject", "")),
                    "size": len(raw),
                    "at": time.time(),
                    "arrived": arrived,
                    "tags": tags or {},
                    "configuration_set": configuration_set,
                }
            )
            accepted = self.accepted[-1]
        if self.on_accept:
            self.on_accept(accepted)
        return message_id

    @staticmethod
    def send_event(accepted: dict) -> dict:
        """The Send event SES publishes for an accepted message (through its
        configuration set), as the SNS notification's Message carries it."""
        tags = {name: [value] for name, value in accepted["tags"].items()}
        if accepted["configuration_set"]:
            tags["ses:configuration-set"] = [accepted["configuration_set"]]
        timestamp = datetime.fromtimestamp(accepted["at"], UTC).isoformat(timespec="milliseconds")
        return {
            "eventType": "Send",
            "mail": {
                "timestamp": timestamp.replace("+00:00", "Z"),
                "messageId": accepted["id"],
                "destination": list(accepted["to"]),
                "tags": tags,
            },
            "send": {},
        }

    def _get_account(self, request):
        if self.production_access is None:
            return self._reply(request, 404, "application/json", json.dumps({"message": "Not implemented"}).encode())
        account = {
            "ProductionAccessEnabled": self.production_access,
            "SendingEnabled": True,
            "SendQuota": {
                "Max24HourSend": self.max_24_hour_send,
                "MaxSendRate": self.max_send_rate,
                "SentLast24Hours": len(self.accepted),
            },
        }
        return self._reply(request, 200, "application/json", json.dumps(account).encode())

    def _error(self, request, error):
        status, kind, code, message = error
        return self._xml(
            request,
            status,
            f"<ErrorResponse xmlns='{NS}'><Error><Type>{kind}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>",
        )

    def _xml(self, request, status, body: str):
        return self._reply(request, status, "text/xml", body.encode())

    @staticmethod
    def _reply(request, status, content_type, body: bytes, headers: dict | None = None):
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4580)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeSES(latency=args.latency, throttle_rate=args.throttle_rate, error_rate=args.error_rate)
    server.start(args.host, args.port)
    print(f"fake SES on {server.url}", flush=True)
    try:
        while True:
            time.sleep(5)
            print(f"accepted {len(server.accepted)}, refused {len(server.refused)}", flush=True)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
