"""What-if for the load test only (`--what-if-reuse-ses-connection`): not how DailyQ runs.

DailyQ builds each verification, welcome and manage-link mail with
`connection=None`, so Django makes a new django-ses backend per message and
django-ses a new boto3 Session and client (about 120 ms of CPU on this
machine, against about 8 ms for the send itself). This module, imported into
the Celery worker with `-I`, hands those mails one SES connection per worker
process instead, to measure what reusing it would change. It patches the
name the subscription services call; nothing in the app is edited.
"""

import os
import threading

from django.core.mail import get_connection

from subscriptions import services

_original_build_email = services.build_email
_local = threading.local()


def _connection():
    # Per process (prefork children must not share a client made before the
    # fork) and per thread (boto3 clients are thread-safe, sessions are not).
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid = os.getpid()
        _local.connection = get_connection()
        _local.connection.open()
    return _local.connection


def build_email(*args, connection=None, **kwargs):
    return _original_build_email(*args, connection=connection or _connection(), **kwargs)


services.build_email = build_email
