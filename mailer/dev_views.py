"""The local outbox: what the SES emulator received, for development runs."""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from mailer.emails import MAIL_HTML_POLICY
from mailer.local_ses import OutboxUnavailable, find_message, read_outbox


@require_safe
@never_cache
def outbox(request):
    # Not "messages": base.html shows the messages framework's list under that name.
    try:
        mails, error = read_outbox(), None
    except OutboxUnavailable as exc:
        mails, error = [], str(exc)
    return render(request, "mailer/dev/outbox.html", {"mails": mails, "error": error})


def _message_or_404(message_id):
    try:
        message = find_message(message_id)
    except OutboxUnavailable as exc:
        raise Http404(str(exc)) from exc
    if message is None:
        raise Http404("No such message in the local outbox.")
    return message


@require_safe
@never_cache
def outbox_message(request, message_id):
    message = _message_or_404(message_id)
    return render(request, "mailer/dev/outbox_message.html", {"message": message})


@require_safe
@never_cache
@xframe_options_sameorigin
def outbox_message_html(request, message_id):
    message = _message_or_404(message_id)
    if message.html is None:
        raise Http404("This message has no HTML part.")
    response = HttpResponse(message.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = MAIL_HTML_POLICY
    return response
