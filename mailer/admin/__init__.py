"""The mailer's admin, one module per model family; importing them registers them with the admin site."""

from mailer.admin import announcements, feedback, questions, runs, sending

__all__ = ["announcements", "feedback", "questions", "runs", "sending"]
