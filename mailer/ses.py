"""SES clients built from the same settings django-ses sends with.

Every call DailyQ makes to SES besides sending (quota, identities, health)
goes through here, so credentials, region and endpoint have one source.
"""

from botocore.config import Config
from django_ses import SESBackend


def ses_client(*, v2: bool = False, connect_timeout: float = 5, read_timeout: float = 15):
    """A boto3 client for SES (v1) or SESv2, without retries of its own."""
    backend = SESBackend(
        use_ses_v2=v2,
        aws_config=Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    backend.open()
    return backend.connection
