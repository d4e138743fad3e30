"""When mail goes out: pausing and resuming, the send schedule and its skip dates, missed send days."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from mailer import schedule, selectors, stats
from mailer.admin.confirm import confirm_page
from mailer.models import MissedDay, SendingState, SendRun, SendSchedule, SkipDate
from mailer.sending import runs
from mailservice.admin_mixins import ReadOnlyAdminMixin


class PauseForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"), max_length=500, help_text=_("Shown on the dashboard and in the mail to ADMINS.")
    )


@admin.register(SendingState)
class SendingStateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "paused", "reason", "paused_at", "resumed_at")
    readonly_fields = ("paused", "reason", "paused_at", "resumed_at")
    actions = ["resume"]
    change_list_template = "admin/mailer/sendingstate/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("pause/", view(self.pause_view), name="mailer_sendingstate_pause"),
            path("resume/", view(self.resume_view), name="mailer_sendingstate_resume"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "state": stats.sending_state()}
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Resume sending (after fixing the cause)"))
    def resume(self, request, queryset):
        self._resume(request)

    def _resume(self, request):
        continued = runs.resume_sending()
        self.message_user(request, _("Sending resumed; %(n)d runs continue.") % {"n": continued})

    def _require_change_permission(self, request):
        if not self.has_view_permission(request) or not request.user.has_perm("mailer.change_sendingstate"):
            raise Http404

    def pause_view(self, request):
        self._require_change_permission(request)
        back = reverse("admin:mailer_sendingstate_changelist")
        form = PauseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reason = _("Paused by %(user)s: %(reason)s") % {
                "user": request.user.get_username(),
                "reason": form.cleaned_data["reason"],
            }
            if runs.pause_sending(reason=str(reason)):
                self.message_user(request, _("Sending paused. Batches claim nothing until you resume."))
            else:
                self.message_user(request, _("Sending was already paused."), messages.WARNING)
            return redirect(back)
        return confirm_page(
            request,
            self.admin_site,
            title=_("Pause sending?"),
            text=_(
                "No daily mail goes out while sending is paused: runs still start at their time, and their "
                "deliveries wait. ADMINS get a mail saying so. Resume to send what waits."
            ),
            button=_("Pause sending"),
            cancel_url=back,
            form=form,
            danger=True,
        )

    def resume_view(self, request):
        self._require_change_permission(request)
        back = reverse("admin:mailer_sendingstate_changelist")
        if request.method == "POST":
            self._resume(request)
            return redirect(back)
        return confirm_page(
            request,
            self.admin_site,
            title=_("Resume sending?"),
            text=_("The deliveries that wait are sent at once, and the next runs send as scheduled."),
            button=_("Resume sending"),
            cancel_url=back,
        )


WEEKDAY_NAMES = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]


class SendScheduleForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("send days"),
        coerce=int,
        choices=list(enumerate(WEEKDAY_NAMES)),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("To stop sending for a while, pause sending instead."),
    )

    class Meta:
        model = SendSchedule
        fields = ["send_time", "weekdays", "skip_korean_holidays"]


class SkipDateInline(admin.TabularInline):
    model = SkipDate
    extra = 1
    fields = ("day", "note")


@admin.register(SendSchedule)
class SendScheduleAdmin(admin.ModelAdmin):
    form = SendScheduleForm
    inlines = [SkipDateInline]
    fields = ("send_time", "weekdays", "skip_korean_holidays", "upcoming")
    readonly_fields = ("upcoming",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One schedule: the list is its page.
        return redirect("admin:mailer_sendschedule_change", schedule.ensure_send_schedule().pk)

    @admin.display(description=_("next send days"))
    def upcoming(self, obj):
        starts = selectors.upcoming_send_starts(after=timezone.localdate(), count=10)
        return format_html_join(", ", "{}", ((f"{timezone.localtime(start):%Y-%m-%d %a %H:%M}",) for start in starts))


@admin.register(MissedDay)
class MissedDayAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    deletable = False
    list_display = ("day", "scheduled_at", "detected_at", "alerted_at", "started_at", "send_now")
    readonly_fields = ("day", "scheduled_at", "detected_at", "alerted_at", "started_at")
    change_list_template = "admin/mailer/missedday/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "late_policy": settings.LATE_SEND_POLICY}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("today's questions"))
    def send_now(self, missed):
        if (
            missed.started_at
            or missed.day != timezone.localdate()
            or SendRun.objects.filter(kind=SendRun.Kind.DAILY, day=missed.day).exists()
        ):
            return "—"
        url = reverse("admin:mailer_missedday_send", args=[missed.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Send today's questions now"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:missed_id>/send/", view(self.send_view), name="mailer_missedday_send"), *super().get_urls()]

    def send_view(self, request, missed_id):
        if not self.has_view_permission(request) or not request.user.has_perm("mailer.change_missedday"):
            raise Http404
        missed = get_object_or_404(MissedDay, pk=missed_id)
        back = reverse("admin:mailer_missedday_changelist")
        if request.method == "POST":
            try:
                run = schedule.send_missed_day(day=missed.day, now=timezone.now())
            except schedule.ScheduleError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect(back)
            self.message_user(request, _("Today's send started late: %(n)d deliveries.") % {"n": run.total})
            return redirect("admin:mailer_sendrun_change", run.pk)
        due = runs.plan_daily_send(day=missed.day).total
        return confirm_page(
            request,
            self.admin_site,
            title=_("Send today's questions now?"),
            text=_(
                "The send of %(day)s did not start at its time. Starting it now mails %(n)d deliveries, late; "
                "it is sent once, however often this is pressed."
            )
            % {"day": f"{missed.day:%Y-%m-%d}", "n": due},
            button=_("Send today's questions now"),
            cancel_url=back,
        )
