"""Public pages. Each view is a form, one service call, and a render or redirect.

GET never changes anything: mail scanners open links. Confirm and
unsubscribe links show a button; the POST acts.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from mailer.archive import landing_facts
from mailer.schedule_text import schedule_text
from mailer.selectors import question_text
from mailservice.http import client_ip
from mailservice.ratelimit import RateLimited
from subscriptions import answers, links, preferences, selectors, services, tokens, tracks
from subscriptions.forms import CodeForm, PreferencesForm, SubscribeForm
from subscriptions.models import ANSWER_MAX_LENGTH, Rating, Subscriber, UnsubscribeReason

PENDING_EMAIL = "subscriptions.pending_email"
OFFER_REASON = "subscriptions.offer_unsubscribe_reason"
MAIL_SERVICE_RETRY_AFTER = 120  # seconds; an SES outage is rarely shorter


def _rate_limited(request, exc: RateLimited, *, message: str, back_url: str | None = None):
    context = {"message": message, "retry_after": exc.retry_after, "back_url": back_url}
    response = render(request, "subscriptions/rate_limited.html", context, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def _bad_link(request):
    return render(request, "subscriptions/bad_link.html", status=404)


@require_safe
def landing(request):
    facts = landing_facts(day=timezone.localdate(), language=get_language())
    return render(request, "subscriptions/landing.html", {"form": SubscribeForm(), **facts})


@require_safe
def privacy(request):
    return render(request, "subscriptions/privacy.html", {"policy": selectors.privacy_policy()})


@require_POST
@never_cache
def subscribe(request):
    form = SubscribeForm(request.POST)
    if not form.is_valid():
        return render(request, "subscriptions/landing.html", {"form": form}, status=400)
    try:
        services.request_subscription(
            email=form.cleaned_data["email"],
            categories=form.cleaned_data["categories"],
            frequency=form.cleaned_data["frequency"],
            language=request.LANGUAGE_CODE,
            client_ip=client_ip(request),
        )
    except RateLimited as exc:
        return _rate_limited(request, exc, message=_("Too many codes were asked for. Please try again later."))
    except services.SandboxRecipientRefused:
        form.add_error(
            None,
            _(
                "DailyQ is in test mode: its mail service may only write to pre-approved addresses, "
                "and this address is not one of them yet. Please try again later."
            ),
        )
        return render(request, "subscriptions/landing.html", {"form": form}, status=403)
    except services.MailServiceUnavailable:
        # The same answer for every address: SES was not reached, nothing was saved.
        form.add_error(
            None,
            _("Our mail service cannot be reached right now, so no code was sent. Please try again in a few minutes."),
        )
        response = render(request, "subscriptions/landing.html", {"form": form}, status=503)
        response["Retry-After"] = str(MAIL_SERVICE_RETRY_AFTER)
        return response
    request.session[PENDING_EMAIL] = form.cleaned_data["email"]
    return redirect("subscriptions:verify")


@require_http_methods(["GET", "POST"])
@never_cache
def verify(request):
    email = request.session.get(PENDING_EMAIL)
    if not email:
        return redirect("subscriptions:landing")
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            subscriber = services.confirm_with_code(email=email, code=form.cleaned_data["code"])
        except services.InvalidCode:
            form.add_error(
                "code", _("That code is wrong or has expired. Use the newest mail, or ask for a new code below.")
            )
        except RateLimited as exc:
            return _rate_limited(request, exc, message=_("Too many wrong codes. Ask for a new code later."))
        else:
            del request.session[PENDING_EMAIL]
            return _confirmed(request, subscriber)
    status = 400 if form.errors else 200
    return render(request, "subscriptions/verify.html", {"form": form, "email": email}, status=status)


@require_POST
@never_cache
def resend(request):
    email = request.session.get(PENDING_EMAIL)
    if not email:
        return redirect("subscriptions:landing")
    try:
        services.resend_verification(email=email, client_ip=client_ip(request))
    except RateLimited as exc:
        return _rate_limited(
            request,
            exc,
            message=_("A new code can be sent once a minute, a few times an hour."),
            back_url=reverse("subscriptions:verify"),
        )
    messages.success(request, _("A new code is on its way. Only the newest code works."))
    return redirect("subscriptions:verify")


def _confirmed(request, subscriber: Subscriber):
    first_mail = schedule_text().first_mail(subscriber.frequency)
    messages.success(request, _("You are subscribed. %(first_mail)s") % {"first_mail": first_mail})
    # A path, not SITE_URL: stay on the host the visitor is on.
    return redirect(links.manage_path(subscriber.id, generation=subscriber.link_generation))


@require_http_methods(["GET", "POST"])
@never_cache
def confirm(request, token):
    try:
        services.check_confirm_link(token=token)
        if request.method == "POST":
            return _confirmed(request, services.confirm_with_link(token=token))
    except services.InvalidLink:
        return render(request, "subscriptions/bad_link.html", {"expired_confirm": True}, status=404)
    return render(request, "subscriptions/confirm.html")


def _reader_page_limited(request):
    try:
        answers.limit_reader_page(client_ip=client_ip(request))
    except RateLimited as exc:
        return _rate_limited(request, exc, message=_("Too many requests from your network. Please wait a minute."))
    return None


@require_http_methods(["GET", "POST"])
@never_cache
def manage(request, token):
    target = selectors.subscriber_for_token(purpose=tokens.Purpose.MANAGE, token=token)
    if target is None:
        return _bad_link(request)
    subscriber = target.subscriber
    active = selectors.active_categories(subscriber=subscriber)
    form = PreferencesForm(initial={"categories": active, "frequency": subscriber.frequency})
    if request.method == "POST" and subscriber.status == Subscriber.Status.ACTIVE:
        action = request.POST.get("action")
        if action == "save":
            form = PreferencesForm(request.POST)
            if form.is_valid():
                preferences.update_preferences(
                    subscriber=subscriber,
                    categories=form.cleaned_data["categories"],
                    frequency=form.cleaned_data["frequency"],
                )
                messages.success(request, _("Your settings are saved."))
                return redirect(request.path)
        elif action == "unsubscribe":
            preferences.unsubscribe(subscriber=subscriber, category=request.POST.get("category"))
            messages.success(request, _("You will not get these questions any more."))
            request.session[OFFER_REASON] = True
            return redirect(request.path)
    due_only = request.GET.get("due") == "1"
    today = timezone.localdate()
    received = [
        (
            item,
            links.answer_path(item.subscription_id, item.question.id, generation=subscriber.link_generation),
            # In the reader's language, as their mails show it.
            question_text(item.question, subscriber.language),
        )
        for item in selectors.reader_questions(subscriber=subscriber, today=today, due_only=due_only)
    ]
    return render(
        request,
        "subscriptions/manage.html",
        {
            "subscriber": subscriber,
            "is_active": subscriber.status == Subscriber.Status.ACTIVE,
            "active_categories": [(value, tracks.label(value)) for value in active],
            "form": form,
            "received": received,
            "due_only": due_only,
            "today": today,
            "first_mail": schedule_text().first_mail(subscriber.frequency),
            # Right after an unsubscribe here, the optional reason (as on the unsubscribe link's page).
            "reasons": UnsubscribeReason.Reason.choices if request.session.pop(OFFER_REASON, False) else None,
            "reason_url": links.unsubscribe_reason_path(subscriber.id, generation=subscriber.link_generation),
        },
        status=400 if form.errors else 200,
    )


# RFC 8058 one-click unsubscribe: mail clients POST "List-Unsubscribe=One-Click"
# to the URL from the List-Unsubscribe header, with no cookie and no CSRF
# token. The signed token in the URL is what authorises the request.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@never_cache
def unsubscribe(request, token):
    target = selectors.subscriber_for_token(purpose=tokens.Purpose.UNSUBSCRIBE, token=token)
    if target is None:
        return _bad_link(request)
    category = selectors.unsubscribe_scope(category=target.category)
    # No link to the manage page: this token travels in List-Unsubscribe
    # headers (mail providers act on it, forwarded mail carries it), so it
    # may stop mail and nothing more.
    context = {
        "subscriber": target.subscriber,
        "category_label": tracks.label(category) if category else None,
    }
    if request.method == "GET":
        return render(request, "subscriptions/unsubscribe.html", context)
    preferences.unsubscribe(subscriber=target.subscriber, category=category)
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse(_("Unsubscribed."), content_type="text/plain; charset=utf-8")
    context["reasons"] = UnsubscribeReason.Reason.choices
    context["reason_url"] = reverse("subscriptions:unsubscribe_reason", args=[token])
    return render(request, "subscriptions/unsubscribed.html", context)


# The reason form on the page after unsubscribing posts here, with the same
# token (CSRF-protected: unlike the one-click POST, a person sends it).
@require_POST
@never_cache
def unsubscribe_reason(request, token):
    limited = _reader_page_limited(request)
    if limited:
        return limited
    target = selectors.subscriber_for_token(purpose=tokens.Purpose.UNSUBSCRIBE, token=token)
    if target is None:
        return _bad_link(request)
    try:
        answers.record_unsubscribe_reason(
            subscriber_id=target.subscriber.id,
            unsubscribed_at=target.subscriber.unsubscribed_at or target.subscriber.updated_at,
            reason=request.POST.get("reason"),
            detail=request.POST.get("detail", ""),
        )
    except ValidationError as exc:
        context = {
            "subscriber": target.subscriber,
            "reasons": UnsubscribeReason.Reason.choices,
            "reason_error": exc.messages[0],
            "reason_url": request.path,
            "detail": request.POST.get("detail", ""),
        }
        return render(request, "subscriptions/unsubscribed.html", context, status=400)
    return render(request, "subscriptions/unsubscribed.html", {"thanks": True})


@require_http_methods(["GET", "POST"])
@never_cache
def answer(request, token):
    """A question from the reader's mail: their own answer first, then the model answer, then a rating."""
    limited = _reader_page_limited(request)
    if limited:
        return limited
    target = selectors.answer_target_for_token(token=token)
    if target is None:
        return _bad_link(request)
    error = None
    if request.method == "POST":
        try:
            if "rating" in request.POST:
                answers.rate_answer(target=target, rating=request.POST.get("rating"))
            else:
                own = request.POST.get("text") if request.POST.get("action") == "answer" else None
                answers.reveal_answer(target=target, text=own)
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            return redirect(request.path)
        reader_answer = selectors.answer_for(target=target)
    else:
        reader_answer = answers.open_from_mail(target=target)
    revealed = bool(reader_answer and reader_answer.revealed_at)
    question = target.question
    shown = question_text(question, get_language())
    return render(
        request,
        "subscriptions/answer.html",
        {
            "question": question,
            "shown": shown,
            "category_label": tracks.label(question.category),
            "question_html": shown.question_html,
            "answer_html": shown.answer_html if revealed else "",
            "revealed": revealed,
            "answer": reader_answer,
            # A refused answer stays in the box, so nothing the reader wrote is lost.
            "text": request.POST.get("text", "") if error else (reader_answer.text if reader_answer else ""),
            "error": error,
            "ratings": Rating.choices,
            "max_length": ANSWER_MAX_LENGTH,
        },
        status=400 if error else 200,
    )
