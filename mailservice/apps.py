from django.apps import AppConfig


class MailserviceConfig(AppConfig):
    name = "mailservice"
    verbose_name = "DailyQ"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deploy checks)
