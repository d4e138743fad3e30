"""A deployment's SES event webhook, as a process of its own: each line read
from stdin is a signed SNS notification, POSTed to /ses/events/ through
Django's test client in the deployment's environment (its database); the
answer's status code is written to stdout. The signing certificate is served
offline at its AWS URL, as in tests/mailer/sns.py.

    python -m tests.mailer.webhook_process CERT_PEM_PATH
"""

import os
import sys
from pathlib import Path


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")
    import django

    django.setup()
    import responses
    from django.test import Client
    from django.urls import reverse

    from tests.mailer.sns import CERT_URL

    client = Client(HTTP_HOST="localhost")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as sns:
        sns.get(CERT_URL, body=Path(sys.argv[1]).read_bytes())
        for line in sys.stdin:
            response = client.post(reverse("ses-events"), data=line, content_type="text/plain")
            print(response.status_code, flush=True)


if __name__ == "__main__":
    main()
