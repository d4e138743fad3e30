import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.db.models import Count, Exists, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from mailer import questions, schedule, selectors, stats, suppressions
from mailer.emails import MAIL_HTML_POLICY
from mailer.markdown import render_markdown
from mailer.models import (
    Announcement,
    Delivery,
    MissedDay,
    Question,
    SendingState,
    SendRun,
    SendSchedule,
    SESEvent,
    SkipDate,
    Suppression,
)
from mailer.sending import announcements, daily_email, runs
from mailer.sending.reasons import QUOTA_REASON
from subscriptions import tracks
from subscriptions.addresses import address_hash
from subscriptions.forms import clean_email_field
from subscriptions.models import Subscriber, Subscription, Track


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["email", "reason", "detail"]

    def clean_email(self):
        # One suppression in force per address is a database constraint, but it
        # depends on lifted_at, which is not on the form, so Django leaves it to
        # the database; checked here to answer with a message instead of an error page.
        email = clean_email_field(self.cleaned_data["email"])
        same_address = self.instance.pk is not None and self.instance.email == email
        if self.instance.lifted_at is None and not same_address and selectors.is_suppressed(email=email):
            raise forms.ValidationError(_("This address is already suppressed."), code="already_suppressed")
        return email


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("address", "reason", "created_at", "lifted_at")
    list_filter = ("reason", ("lifted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("email",)
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "lifted_at")
    actions = ["lift"]

    @admin.display(description=_("email"), ordering="email")
    def address(self, suppression):
        return suppression.email or _("(erased address)")

    def get_readonly_fields(self, request, obj=None):
        # An erased address is known by its hash only: nothing to edit.
        return (*self.readonly_fields, "email") if obj is not None and not obj.email else self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        # An address searched for also finds its suppression kept after erasure, by the hash.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if "@" in search_term:
            results |= queryset.filter(email_hash=address_hash(search_term.strip()))
        return results, may_have_duplicates

    def has_delete_permission(self, request, obj=None):
        return False  # lifted, never deleted: the row is the address's history

    @admin.action(description=_("Lift: allow mail to these addresses again"))
    def lift(self, request, queryset):
        lifted = suppressions.lift_suppressions(ids=queryset.values_list("id", flat=True))
        self.message_user(request, _("%(n)d suppressions lifted.") % {"n": lifted})


class TrackFilter(admin.SimpleListFilter):
    """Rows by track, named as the operator named them; retired tracks listed too."""

    title = _("category")
    parameter_name = "category"
    field = "category"

    def lookups(self, request, model_admin):
        return tracks.choices(retired=True)

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class DeliveryTrackFilter(TrackFilter):
    field = "subscription__category"


class QuestionForm(forms.ModelForm):
    move_to = forms.IntegerField(
        label=_("position"),
        min_value=1,
        required=False,
        help_text=_("Leave empty to add at the end. Changing it moves the question and shifts the others."),
    )

    class Meta:
        model = Question
        # The position is not edited as a model field: `move_to` is applied by move_question,
        # which keeps (category, position) unique while the others shift.
        fields = [
            "category", "title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en",
            "is_published", "source_key", "license", "license_url", "attribution",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Retired tracks too: their archive is still kept and edited.
        self.fields["category"] = forms.ChoiceField(label=_("category"), choices=tracks.choices(retired=True))
        if self.instance.pk:
            self.fields["move_to"].initial = self.instance.position
        self.fields["source_key"].required = False
        self.fields["source_key"].help_text = _(
            "Where the question came from; an import of the same file updates it. "
            "Leave empty for a question written here."
        )

    def clean_source_key(self):
        return self.cleaned_data["source_key"] or f"admin:{uuid.uuid4().hex}"


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    form = QuestionForm
    list_display = ("position", "any_title", "title_en", "category", "is_published", "figures", "updated_at")
    list_display_links = ("any_title",)
    list_filter = (TrackFilter, "is_published")
    search_fields = ("title", "title_en", "source_key")
    ordering = ("category", "position")
    readonly_fields = ("preview", "figures")
    fields = (
        "category", "move_to", "title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en",
        "is_published", "source_key", "license", "license_url", "attribution", "preview",
    )  # fmt: skip
    actions = ["publish", "unpublish"]

    def get_fields(self, request, obj=None):
        return [*super().get_fields(request, obj), *(("figures",) if obj is not None else ())]

    def get_changelist_instance(self, request):
        # The readers' figures for the listed page, in two grouped queries, not two per row.
        changelist = super().get_changelist_instance(request)
        listed = list(changelist.result_list)
        found = stats.question_figures(question_ids=[question.pk for question in listed])
        for question in listed:
            question.reader_figures = found.get(question.pk, stats.QuestionFigures())
        return changelist

    @admin.display(description=_("mailed · opened · answers written · knew/partly/didn't know · reviews sent"))
    def figures(self, question):
        if not question.pk:
            return "—"
        figures = getattr(question, "reader_figures", None)
        if figures is None:
            figures = stats.question_figures(question_ids=[question.pk]).get(question.pk, stats.QuestionFigures())
        return (
            f"{figures.mailed} · {figures.opened} · {figures.answers_written} · "
            f"{figures.knew}/{figures.partly}/{figures.again} · {figures.reviews_sent}"
        )

    @admin.display(description=_("title"), ordering="title")
    def any_title(self, question):
        # An English-only question has no Korean title; its link still needs a text.
        return question.title or question.title_en

    @admin.display(description=_("preview"))
    def preview(self, question):
        if not question.pk:
            return "—"
        texts = [[getattr(question, name) for name in selectors.text_fields(lang)] for lang in selectors.TEXT_LANGUAGES]
        return format_html_join(
            "",
            '<div class="dailyq-preview" lang="{}"><h3>{}</h3>{}<hr>{}</div>',
            (
                (lang, title, render_markdown(question_md), render_markdown(answer_md))
                for lang, (title, question_md, answer_md) in zip(selectors.TEXT_LANGUAGES, texts, strict=True)
                if title
            ),
        )

    def save_model(self, request, obj, form, change):
        # The position field shows where the question is; left as shown, it asks for no move
        # (a question given another category goes to that category's end).
        wanted = form.cleaned_data.get("move_to") if "move_to" in form.changed_data else None
        questions.save_question(question=obj, position=wanted)

    def delete_model(self, request, obj):
        questions.delete_questions(question_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        questions.delete_questions(question_ids=list(queryset.values_list("pk", flat=True)))

    @admin.action(description=_("Publish"))
    def publish(self, request, queryset):
        count = questions.publish_questions(question_ids=list(queryset.values_list("pk", flat=True)), published=True)
        self.message_user(
            request, ngettext("%(n)d question published.", "%(n)d questions published.", count) % {"n": count}
        )

    @admin.action(description=_("Unpublish (never sent, hidden from the site)"))
    def unpublish(self, request, queryset):
        count = questions.publish_questions(question_ids=list(queryset.values_list("pk", flat=True)), published=False)
        self.message_user(
            request,
            ngettext(
                "%(n)d question unpublished: it is not sent and not shown on the site.",
                "%(n)d questions unpublished: they are not sent and not shown on the site.",
                count,
            )
            % {"n": count},
        )


class TrackForm(forms.ModelForm):
    class Meta:
        model = Track
        fields = ["slug", "name_ko", "name_en", "position", "is_active", "start_position"]

    def clean(self):
        cleaned = super().clean()
        slug = cleaned.get("slug") or self.instance.slug
        position = cleaned.get("start_position")
        if slug and position is not None:
            try:
                questions.validate_start_position(category=slug, position=position)
            except forms.ValidationError as error:
                self.add_error("start_position", error)
        return cleaned


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    """Tracks readers choose from. A track is retired (unticked), never deleted: rows name it."""

    form = TrackForm
    list_display = ("name_ko", "name_en", "slug", "position", "is_active", "start_position", "published")
    list_display_links = ("name_ko", "name_en")
    list_editable = ("position", "is_active", "start_position")

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=TrackForm, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # Subscriptions, questions and links name a track by its slug.
        return ("slug",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("published questions"))
    def published(self, track):
        return Question.objects.filter(category=track.slug, is_published=True).count()


class TestSendForm(forms.Form):
    to = forms.CharField(label=_("Send a test to"), max_length=254)

    def clean_to(self):
        value = self.cleaned_data["to"].strip()
        validate_email(value)
        return value


@admin.register(SendRun)
class SendRunAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # runs are history; the actions below are how to act on them

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
            "message": message,
            "headers": {**message.extra_headers, "Subject": message.subject, "To": ", ".join(message.to)},
            "form": form,
        }
        return TemplateResponse(request, "admin/mailer/preview.html", context)

    def preview_html_view(self, request, subscription_id):
        if not self.has_view_permission(request):
            raise Http404
        _subscription, _day, message = self._preview_message(subscription_id)
        response = HttpResponse(message.alternatives[0][0], content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = MAIL_HTML_POLICY
        return response


class SubscriberFilter(admin.SimpleListFilter):
    """One subscriber's rows, linked from their page; shown only while in use (the list of all would be long)."""

    title = _("subscriber")
    parameter_name = "subscriber"

    def rows_of(self, subscriber_id: int) -> Q:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        value = request.GET.get(self.parameter_name, "")
        if not value.isdigit():
            return []
        email = Subscriber.objects.filter(pk=value).values_list("email", flat=True).first()
        return [(value, email)] if email else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(self.rows_of(int(value))).distinct()


class DeliverySubscriberFilter(SubscriberFilter):
    def rows_of(self, subscriber_id):
        return Q(subscription__subscriber_id=subscriber_id)


class EventSubscriberFilter(SubscriberFilter):
    def rows_of(self, subscriber_id):
        email = Subscriber.objects.filter(pk=subscriber_id).values_list("email", flat=True).first()
        return Q(delivery__subscription__subscriber_id=subscriber_id) | (Q(email=email) if email else Q(pk__in=[]))


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PauseForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"), max_length=500, help_text=_("Shown on the dashboard and in the mail to ADMINS.")
    )


def confirm_page(request, admin_site, *, title, text, button, cancel_url, form=None, danger=False):
    """A page that asks before an admin's button acts (GET shows it, POST acts)."""
    context = {
        **admin_site.each_context(request),
        "title": title,
        "text": text,
        "button": button,
        "cancel_url": cancel_url,
        "form": form,
        "danger": danger,
    }
    return TemplateResponse(request, "admin/mailer/confirm.html", context)


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
        continued = runs.resume_sending()
        self.message_user(request, _("Sending resumed; %(n)d runs continue.") % {"n": continued})

    def pause_view(self, request):
        if not self.has_view_permission(request) or not request.user.has_perm("mailer.change_sendingstate"):
            raise Http404
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
        if not self.has_view_permission(request) or not request.user.has_perm("mailer.change_sendingstate"):
            raise Http404
        back = reverse("admin:mailer_sendingstate_changelist")
        if request.method == "POST":
            continued = runs.resume_sending()
            self.message_user(request, _("Sending resumed; %(n)d runs continue.") % {"n": continued})
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
class MissedDayAdmin(admin.ModelAdmin):
    list_display = ("day", "scheduled_at", "detected_at", "alerted_at", "started_at", "send_now")
    readonly_fields = ("day", "scheduled_at", "detected_at", "alerted_at", "started_at")
    change_list_template = "admin/mailer/missedday/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

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


@admin.register(SESEvent)
class SESEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "kind", "bounce_type", "email", "ses_message_id", "delivery")
    list_filter = ("kind", "bounce_type", EventSubscriberFilter, "received_at")
    search_fields = ("email", "ses_message_id")
    list_select_related = ("delivery",)
    readonly_fields = [f.name for f in SESEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TestAddressesForm(forms.Form):
    to = forms.CharField(
        label=_("Send a test to"), max_length=2000, help_text=_("One or more addresses, separated by commas.")
    )
    language = forms.ChoiceField(label=_("language"), choices=settings.LANGUAGES)

    def clean_to(self):
        addresses = [a.strip() for a in self.cleaned_data["to"].split(",") if a.strip()]
        if not addresses or len(addresses) > 10:
            raise forms.ValidationError(_("Give one to ten addresses."))
        for address in addresses:
            validate_email(address)
        return addresses


class SendAnnouncementForm(forms.Form):
    at = forms.DateTimeField(
        label=_("send at"),
        required=False,
        help_text=_("Korean time, YYYY-MM-DD HH:MM. Empty: now."),
    )


class AnnouncementForm(forms.ModelForm):
    class Meta:
        model = Announcement
        fields = ["subject", "body_md", "category", "frequency", "language"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "category" in self.fields:
            self.fields["category"] = forms.ChoiceField(
                label=_("category"),
                choices=[("", _("every category")), *tracks.choices()],
                required=False,
                help_text=_("Empty: every category."),
            )


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    form = AnnouncementForm
    list_display = ("subject", "audience", "state", "scheduled_at", "created_at")
    fields = ("subject", "body_md", "category", "frequency", "language", "state", "audience", "actions_links")
    readonly_fields = ("state", "audience", "actions_links")

    def get_readonly_fields(self, request, obj=None):
        # Once its run exists, what was mailed stays as it was mailed.
        if obj is not None and announcements.is_started(obj):
            return ("subject", "body_md", "category", "frequency", "language", *self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return obj is None or not announcements.is_started(obj)

    @admin.display(description=_("audience"))
    def audience(self, announcement):
        if announcement.pk is None:
            return "—"
        return ngettext("%(n)d person", "%(n)d people", n := selectors.audience_size(announcement=announcement)) % {
            "n": n
        }

    @admin.display(description=_("state"))
    def state(self, announcement):
        run = announcement.runs.first() if announcement.pk else None
        if run is not None:
            url = reverse("admin:mailer_sendrun_change", args=[run.pk])
            return format_html('<a href="{}">{}</a>', url, run.get_status_display())
        if announcement.scheduled_at:
            return _("Scheduled for %(at)s") % {"at": f"{timezone.localtime(announcement.scheduled_at):%Y-%m-%d %H:%M}"}
        return _("Draft")

    @admin.display(description=_("preview and send"))
    def actions_links(self, announcement):
        if announcement.pk is None:
            return _("Save first, then preview and send.")
        preview = reverse("admin:mailer_announcement_preview", args=[announcement.pk])
        links = [(preview, _("Preview and test send"))]
        if not announcements.is_started(announcement):
            links.append((reverse("admin:mailer_announcement_send", args=[announcement.pk]), _("Send…")))
        return format_html_join(" ", '<a class="button" href="{}">{}</a>', links)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view), name="mailer_announcement_preview"),
            path(
                "<int:pk>/preview/<str:language>/html/",
                view(xframe_options_sameorigin(self.preview_html_view)),
                name="mailer_announcement_preview_html",
            ),
            path("<int:pk>/send/", view(self.send_view), name="mailer_announcement_send"),
            *super().get_urls(),
        ]

    def _announcement(self, request, pk) -> Announcement:
        if not self.has_view_permission(request):
            raise Http404
        return get_object_or_404(Announcement, pk=pk)

    def preview_view(self, request, pk):
        announcement = self._announcement(request, pk)
        language = request.GET.get("language") or settings.LANGUAGE_CODE
        if language not in dict(settings.LANGUAGES):
            raise Http404
        form = TestAddressesForm(request.POST or None, initial={"to": request.user.email, "language": language})
        if request.method == "POST" and form.is_valid():
            self._test_send(request, announcement, form.cleaned_data["to"], form.cleaned_data["language"])
            return redirect(f"{request.path}?language={form.cleaned_data['language']}")
        message = announcements.preview_announcement(announcement=announcement, language=language)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Preview: %(subject)s") % {"subject": announcement.subject},
            "opts": self.model._meta,
            "announcement": announcement,
            "language": language,
            "languages": settings.LANGUAGES,
            "message": message,
            "headers": {**message.extra_headers, "Subject": message.subject, "To": ", ".join(message.to)},
            "html_url": reverse("admin:mailer_announcement_preview_html", args=[announcement.pk, language]),
            "form": form,
        }
        return TemplateResponse(request, "admin/mailer/announcement/preview.html", context)

    def _test_send(self, request, announcement, addresses, language):
        for address in addresses:
            try:
                result = announcements.send_test_announcement(announcement=announcement, to=address, language=language)
            except Exception as exc:  # shown to the admin, who can fix SES and try again
                error = {"to": address, "error": exc}
                self.message_user(request, _("The test mail to %(to)s was not sent: %(error)s") % error, messages.ERROR)
                continue
            if result.sent:
                self.message_user(request, _("Test mail sent to %(to)s.") % {"to": address})
            else:
                error = {"to": address, "error": result.refused}
                self.message_user(
                    request, _("The test mail to %(to)s was not sent: %(error)s") % error, messages.WARNING
                )

    def preview_html_view(self, request, pk, language):
        announcement = self._announcement(request, pk)
        if language not in dict(settings.LANGUAGES):
            raise Http404
        message = announcements.preview_announcement(announcement=announcement, language=language)
        response = HttpResponse(message.alternatives[0][0], content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = MAIL_HTML_POLICY
        return response

    def send_view(self, request, pk):
        announcement = self._announcement(request, pk)
        if not self.has_change_permission(request, announcement):
            raise Http404
        back = reverse("admin:mailer_announcement_change", args=[announcement.pk])
        form = SendAnnouncementForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            at = form.cleaned_data["at"]
            try:
                if at is None:
                    announcements.send_announcement_now(announcement=announcement)
                    self.message_user(request, _("The announcement is being sent."))
                else:
                    announcements.schedule_announcement(announcement=announcement, at=at)
                    when = f"{timezone.localtime(at):%Y-%m-%d %H:%M}"
                    self.message_user(request, _("The announcement will be sent at %(at)s.") % {"at": when})
            except announcements.AnnouncementStarted:
                self.message_user(request, _("This announcement was sent already."), messages.WARNING)
            return redirect(back)
        size = selectors.audience_size(announcement=announcement)
        return confirm_page(
            request,
            self.admin_site,
            title=_("Send this announcement?"),
            text=ngettext(
                "“%(subject)s” goes to %(n)d person (%(audience)s), once, at the time below (empty: now). "
                "Suppressed addresses are skipped.",
                "“%(subject)s” goes to %(n)d people (%(audience)s), once each, at the time below (empty: now). "
                "Suppressed addresses are skipped.",
                size,
            )
            % {"subject": announcement.subject, "n": size, "audience": audience_label(announcement)},
            button=_("Send the announcement"),
            cancel_url=back,
            form=form,
        )


def audience_label(announcement: Announcement) -> str:
    parts = [
        tracks.label(announcement.category) if announcement.category else _("every category"),
        announcement.get_frequency_display() if announcement.frequency else _("daily and weekly"),
        announcement.get_language_display() if announcement.language else _("every language"),
    ]
    return " · ".join(str(part) for part in parts)
