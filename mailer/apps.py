import importlib.util
import sys

from django.apps import AppConfig


class MailerConfig(AppConfig):
    name = "mailer"
    verbose_name = "Mail"

    def ready(self):
        # django-ses tries `import dkim` (dkimpy, for signing on our side) for
        # every message it sends; SES signs with Easy DKIM, so it is not
        # installed, and a failed import searches sys.path every time (~2% of
        # a worker's CPU). Recording the absence once makes
        # each later try a dictionary lookup. Installing dkimpy still works.
        if "dkim" not in sys.modules and importlib.util.find_spec("dkim") is None:
            sys.modules["dkim"] = None
