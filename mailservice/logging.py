import logging


class SkipUnavailableAnswers(logging.Filter):
    """Drop django.request records of 503 answers (see LOGGING in settings).

    DailyQ answers 503 on purpose (/healthz while a dependency is down, the
    subscribe form while SES cannot be reached) and logs the cause as a
    warning. Left in, each would be an ERROR that mails ADMINS, through the
    very SES that is down, on every probe or visitor. An exception's 500 stays.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 503
