import uuid

from django import forms
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from mailer import questions, selectors, services, suppressions
from mailer.emails import MAIL_HTML_POLICY
from mailer.markdown import render_markdown
from mailer.models import CategorySettings, Delivery, Question, SendingState, SendRun, SESEvent, Suppression
from subscriptions.forms import clean_email_field
from subscriptions.models import Subscription


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
    list_display = ("email", "reason", "created_at", "lifted_at")
    list_filter = ("reason", ("lifted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("email",)
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "lifted_at")
    actions = ["lift"]

    def has_delete_permission(self, request, obj=None):
        return False  # lifted, never deleted: the row is the address's history

    @admin.action(description=_("Lift: allow mail to these addresses again"))
    def lift(self, request, queryset):
        lifted = sum(
            suppressions.lift_suppression(email=email) for email in queryset.values_list("email", flat=True).distinct()
        )
        self.message_user(request, _("%(n)d suppressions lifted.") % {"n": lifted})


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
    list_display = ("position", "any_title", "title_en", "category", "is_published", "updated_at")
    list_display_links = ("any_title",)
    list_filter = ("category", "is_published")
    search_fields = ("title", "title_en", "source_key")
    ordering = ("category", "position")
    readonly_fields = ("preview",)
    fields = (
        "category", "move_to", "title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en",
        "is_published", "source_key", "license", "license_url", "attribution", "preview",
    )  # fmt: skip
    actions = ["publish", "unpublish"]

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
        questions.publish_questions(question_ids=list(queryset.values_list("pk", flat=True)), published=True)

    @admin.action(description=_("Unpublish (never sent, hidden from the site)"))
    def unpublish(self, request, queryset):
        questions.publish_questions(question_ids=list(queryset.values_list("pk", flat=True)), published=False)


@admin.register(CategorySettings)
class CategorySettingsAdmin(admin.ModelAdmin):
    list_display = ("category", "start_position")
    list_editable = ("start_position",)


class TestSendForm(forms.Form):
    to = forms.CharField(label=_("Send a test to"), max_length=254)

    def clean_to(self):
        value = self.cleaned_data["to"].strip()
        validate_email(value)
        return value


@admin.register(SendRun)
class SendRunAdmin(admin.ModelAdmin):
    list_display = ("day", "status", "total", "sent", "failed", "skipped", "started_at", "duration")
    list_filter = ("status",)
    date_hierarchy = "day"
    readonly_fields = ("day", "cutoff", "status", "total", "created_at", "started_at", "finished_at", "report_sent_at")
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
            )
        )

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
        retried = sum(services.retry_failed_deliveries(run=run) for run in queryset)
        self.message_user(request, _("%(n)d failed deliveries queued again.") % {"n": retried})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            completion = selectors.run_completion(run=run)
            extra_context = {
                **(extra_context or {}),
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
        message = services.preview_daily_email(subscription=subscription, day=day)
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
                result = services.send_test_mail(subscription=subscription, to=form.cleaned_data["to"], day=day)
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


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("run", "subscriber_email", "category", "status", "reason", "ses_message_id", "sent_at")
    list_filter = ("status", "run", "subscription__category")
    search_fields = ("subscription__subscriber__email", "ses_message_id")
    list_select_related = ("run", "subscription__subscriber")
    show_full_result_count = False

    @admin.display(description=_("email"))
    def subscriber_email(self, delivery):
        return delivery.subscription.subscriber.email

    @admin.display(description=_("category"))
    def category(self, delivery):
        return delivery.subscription.get_category_display()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SendingState)
class SendingStateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "paused", "reason", "paused_at", "resumed_at")
    readonly_fields = ("paused", "reason", "paused_at", "resumed_at")
    actions = ["resume"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Resume sending (after fixing the cause)"))
    def resume(self, request, queryset):
        runs = services.resume_sending()
        self.message_user(request, _("Sending resumed; %(n)d runs continue.") % {"n": runs})


@admin.register(SESEvent)
class SESEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "kind", "bounce_type", "email", "ses_message_id", "delivery")
    list_filter = ("kind", "bounce_type", "received_at")
    search_fields = ("email", "ses_message_id")
    list_select_related = ("delivery",)
    readonly_fields = [f.name for f in SESEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
