"""Send runs and their deliveries, and the preview and test send of a reader's daily mail."""

from django import forms
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.db.models import Count, Exists, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from mailer import selectors, stats
from mailer.admin.filters import DeliverySubscriberFilter, DeliveryTrackFilter
from mailer.admin.previews import html_part_response, message_context
from mailer.models import Delivery, SendingState, SendRun
from mailer.sending import daily_email, runs
from mailer.sending.reasons import QUOTA_REASON
from mailservice.admin_mixins import ReadOnlyAdminMixin
from subscriptions import tracks
from subscriptions.models import Subscription


class TestSendForm(forms.Form):
    to = forms.CharField(label=_("Send a test to"), max_length=254)

    def clean_to(self):
        value = self.cleaned_data["to"].strip()
        validate_email(value)
        return value


@admin.register(SendRun)
class SendRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Runs are history; the actions below are how to act on them.
    list_display = (
        "day",
        "kind",
        "announcement",
        "run_status",
        "total",
        "sent",
        "failed",
        "skipped",
        "started_at",
        "duration",
    )
    list_filter = ("kind", "status")
    date_hierarchy = "day"
    readonly_fields = (
        "day", "kind", "announcement", "cutoff", "run_status", "total", "created_at", "started_at", "finished_at",
        "report_sent_at",
    )  # fmt: skip
    actions = ["retry_failed"]
    change_form_template = "admin/mailer/sendrun/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                sent_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SENT)),
                failed_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
                skipped_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SKIPPED)),
                sending_paused=Exists(SendingState.objects.filter(id=1, paused=True)),
            )
        )

    @admin.display(description=_("status"), ordering="status")
    def run_status(self, run):
        if run.status != SendRun.Status.DONE and run.sending_paused:
            return _("Paused")
        return run.get_status_display()

    @admin.display(description=_("sent"), ordering="sent_count")
    def sent(self, run):
        return run.sent_count

    @admin.display(description=_("failed"), ordering="failed_count")
    def failed(self, run):
        return run.failed_count

    @admin.display(description=_("skipped"), ordering="skipped_count")
    def skipped(self, run):
        return run.skipped_count

    @admin.action(description=_("Retry the failed deliveries"))
    def retry_failed(self, request, queryset):
        retried = sum(runs.retry_failed_deliveries(run=run) for run in queryset)
        self.message_user(request, _("%(n)d failed deliveries queued again.") % {"n": retried})
        held = Delivery.objects.filter(run__in=queryset, status=Delivery.Status.DEFERRED, reason=QUOTA_REASON).count()
        if held:
            message = _("%(n)d deliveries stay deferred: SES's 24-hour quota is used up.") % {"n": held}
            self.message_user(request, message, messages.WARNING)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            completion = selectors.run_completion(run=run)
            extra_context = {
                **(extra_context or {}),
                # A run that is not done waits while sending is paused: say so, not "Sending 0%".
                "paused_state": stats.sending_state() if run.status != SendRun.Status.DONE else None,
                "progress": completion.counts,
                "finished": completion.finished,
                "percent": completion.percent,
                "deliveries_url": reverse("admin:mailer_delivery_changelist") + f"?run__id__exact={run.id}",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- Preview and test-send one subscription's mail ---

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("preview/<int:subscription_id>/", view(self.preview_view), name="mailer_preview"),
            path(
                "preview/<int:subscription_id>/html/",
                view(xframe_options_sameorigin(self.preview_html_view)),
                name="mailer_preview_html",
            ),
            *super().get_urls(),
        ]

    def _preview_message(self, subscription_id):
        subscription = get_object_or_404(Subscription.objects.select_related("subscriber"), pk=subscription_id)
        day = timezone.localdate()
        message = daily_email.preview_daily_email(subscription=subscription, day=day)
        if message is None:
            raise Http404("This category has no published questions.")
        return subscription, day, message

    def preview_view(self, request, subscription_id):
        if not self.has_view_permission(request):
            raise Http404
        subscription, day, message = self._preview_message(subscription_id)
        form = TestSendForm(request.POST or None, initial={"to": request.user.email})
        if request.method == "POST" and form.is_valid():
            try:
                result = daily_email.send_test_mail(subscription=subscription, to=form.cleaned_data["to"], day=day)
            except Exception as exc:  # shown to the admin, who can fix SES and try again
                self.message_user(request, _("The test mail was not sent: %(error)s") % {"error": exc}, messages.ERROR)
            else:
                if result.sent:
                    self.message_user(request, _("Test mail sent (SES message id %(id)s).") % {"id": result.message_id})
                else:
                    error = {"error": result.refused}
                    self.message_user(request, _("The test mail was not sent: %(error)s") % error, messages.WARNING)
            return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Today's mail for %(subscription)s") % {"subscription": subscription},
            "opts": self.model._meta,
            "subscription": subscription,
            "day": day,
            **message_context(message, html_url=reverse("admin:mailer_preview_html", args=[subscription.pk])),
            "form": form,
        }
        return TemplateResponse(request, "admin/mailer/preview.html", context)

    def preview_html_view(self, request, subscription_id):
        if not self.has_view_permission(request):
            raise Http404
        _subscription, _day, message = self._preview_message(subscription_id)
        return html_part_response(message)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    deletable = False
    list_display = ("run", "subscriber_email", "category", "status", "feedback", "reason", "ses_message_id", "sent_at")
    list_filter = ("status", "feedback", DeliverySubscriberFilter, "run__kind", "run", DeliveryTrackFilter)
    search_fields = ("subscription__subscriber__email", "ses_message_id")
    list_select_related = ("run", "subscription__subscriber")
    show_full_result_count = False

    @admin.display(description=_("email"))
    def subscriber_email(self, delivery):
        return delivery.subscription.subscriber.email if delivery.subscription else _("(erased)")

    @admin.display(description=_("category"))
    def category(self, delivery):
        if delivery.subscriber_id:  # an announcement's row: to the person, not a category
            return _("Announcement")
        return tracks.label(delivery.subscription.category) if delivery.subscription else "—"
