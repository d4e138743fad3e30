"""A built mail shown to an admin before it is sent: the daily mail's and an announcement's preview pages."""

from django.http import HttpResponse

from mailer.emails import MAIL_HTML_POLICY


def message_context(message, *, html_url: str) -> dict:
    """What templates/admin/mailer/_message.html shows of a message."""
    return {
        "message": message,
        "headers": {**message.extra_headers, "Subject": message.subject, "To": ", ".join(message.to)},
        "html_url": html_url,
    }


def html_part_response(message) -> HttpResponse:
    """The message's HTML part alone, for the preview's sandboxed frame."""
    response = HttpResponse(message.alternatives[0][0], content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = MAIL_HTML_POLICY
    return response
