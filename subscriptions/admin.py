import csv

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db.models import Max
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mailer.suppressions import suppress_address
from mailservice.admin_mixins import ReadOnlyAdminMixin
from subscriptions import admin_services, erasure, importing, preferences, selectors, tracks
from subscriptions.admin_filters import TrackFilter
from subscriptions.forms import clean_email_field
from subscriptions.models import SetAsideAddress, Subscriber, Subscription, Verification
from subscriptions.selectors import MailState

IMPORT_SESSION_KEY = "subscriptions.admin.import_csv"
IMPORT_MAX_BYTES = 2 * 1024 * 1024


class SubscriptionForm(forms.ModelForm):
    """A subscription on the subscriber page or its own page.

    admin_services.save_subscription starts a new one where the services start
    every subscription, so its position is not entered by hand.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "category" in self.fields:
            # A new subscription is to an offered track; a kept one may be to a retired track.
            self.fields["category"] = forms.ChoiceField(
                label=_("category"), choices=tracks.choices(retired=self.instance.pk is not None)
            )
        if self.instance.pk is None and "next_position" in self.fields:
            field = self.fields["next_position"]
            field.disabled = True
            field.required = False
            field.help_text = _("A new subscription starts at its category's start position.")
            self.initial["next_position"] = None


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    form = SubscriptionForm
    extra = 0
    fields = ("category", "is_active", "next_position", "activated_at", "deactivated_at", "last_sent_at")
    readonly_fields = ("activated_at", "deactivated_at", "last_sent_at")


class MailStateFilter(admin.SimpleListFilter):
    title = _("mail")
    parameter_name = "mail_state"

    def lookups(self, request, model_admin):
        return MailState.choices

    def queryset(self, request, queryset):
        return queryset.filter(mail_state=self.value()) if self.value() else queryset


class ActiveCategoryFilter(admin.SimpleListFilter):
    """Subscribers by the categories they get now; a category they left does not count."""

    title = _("active category")
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return tracks.choices()

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(subscriptions__category=self.value(), subscriptions__is_active=True)


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, first row naming the columns: email (required), categories "
            "(the slugs of offered tracks, separated by ';'), frequency (daily or weekly), language (ko or en)."
        ),
    )


class ConfirmImportForm(forms.Form):
    already_consented = forms.BooleanField(
        required=False,
        label=_("These people already agreed to receive DailyQ; activate them without a verification mail."),
    )


class SubscriberForm(forms.ModelForm):
    # Read as the subscribe form reads it: canonical, or one clear error.
    email = forms.CharField(label=_("email"), max_length=1000)

    class Meta:
        model = Subscriber
        fields = ["email", "status", "frequency", "language"]

    def clean_email(self):
        return clean_email_field(self.cleaned_data["email"])


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberForm
    list_display = (
        "email", "mail", "status", "categories", "frequency", "language", "created_at", "confirmed_at", "last_mail",
    )  # fmt: skip
    list_filter = (
        MailStateFilter, "status", ActiveCategoryFilter, "frequency", "language", "created_at", "confirmed_at",
    )  # fmt: skip
    search_fields = ("email",)
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    inlines = [SubscriptionInline]
    readonly_fields = ("consented_at", "confirmed_at", "unsubscribed_at", "created_at", "updated_at", "mail_history")
    actions = ["resend_verification", "unsubscribe_all", "suppress", "erase", "export_csv"]
    change_list_template = "admin/subscriptions/subscriber/change_list.html"

    def get_queryset(self, request):
        return selectors.with_mail_state(
            super()
            .get_queryset(request)
            .annotate(last_mail_at=Max("subscriptions__last_sent_at"))
            .prefetch_related("subscriptions")
        )

    @admin.display(description=_("mail"), ordering="mail_state")
    def mail(self, subscriber):
        state = MailState(subscriber.mail_state)
        marker = "✔" if state == MailState.GETS_MAIL else "✘"
        return format_html('<span class="dailyq-mail-state dailyq-{}">{} {}</span>', state.value, marker, state.label)

    @admin.display(description=_("deliveries and SES events"))
    def mail_history(self, subscriber):
        if subscriber.pk is None:
            return "—"
        return render_to_string(
            "admin/subscriptions/subscriber/mail_history.html",
            {
                "deliveries": selectors.subscriber_deliveries(subscriber=subscriber),
                "events": selectors.subscriber_events(subscriber=subscriber),
                "all_deliveries": reverse("admin:mailer_delivery_changelist") + f"?subscriber={subscriber.pk}",
                "all_events": reverse("admin:mailer_sesevent_changelist") + f"?subscriber={subscriber.pk}",
            },
        )

    def get_actions(self, request):
        # Deleting a person is erasing them: "erase" says so, and asks first.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        erasure.erase_subscribers(subscriber_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        erasure.erase_subscribers(subscriber_ids=list(queryset.values_list("pk", flat=True)))

    @admin.action(
        description=_("Erase: delete these people's data (deliveries stay anonymous, suppressions as a hash)"),
        permissions=["delete"],
    )
    def erase(self, request, queryset):
        # Django's own confirmation page; its "yes" comes back here and ends in delete_queryset.
        return delete_selected(self, request, queryset)

    def get_readonly_fields(self, request, obj=None):
        # A status changes through the actions (verification mail, unsubscribe),
        # which keep the dates and the subscriptions in step with it.
        return (*self.readonly_fields, "status") if obj is not None else self.readonly_fields

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "status":  # only on the add page: read-only on the change page
            kwargs["choices"] = [
                (status.value, status.label) for status in (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE)
            ]
            kwargs["help_text"] = _(
                "Active: this person already agreed to receive DailyQ; they count as confirmed now and get "
                "mail from the next send, without a verification mail. Pending: they get mail only after "
                "confirming; send them a verification mail with the action on the list."
            )
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            admin_services.add_subscriber(subscriber=obj)

    def save_formset(self, request, form, formset, change):
        for subscription in formset.save(commit=False):
            admin_services.save_subscription(subscription=subscription)
        for subscription in formset.deleted_objects:
            subscription.delete()

    @admin.display(description=_("categories"))
    def categories(self, subscriber):
        return ", ".join(str(tracks.label(s.category)) for s in subscriber.subscriptions.all() if s.is_active) or "—"

    @admin.display(description=_("last mail"), ordering="last_mail_at")
    def last_mail(self, subscriber):
        return subscriber.last_mail_at

    @admin.action(description=_("Send a new verification mail"))
    def resend_verification(self, request, queryset):
        sent = sum(admin_services.send_new_verification(subscriber=subscriber) for subscriber in queryset)
        skipped = queryset.count() - sent
        self.message_user(
            request,
            ngettext("%(n)d verification mail queued.", "%(n)d verification mails queued.", sent) % {"n": sent}
            + (" " + _("%(n)d active subscribers skipped.") % {"n": skipped} if skipped else ""),
        )

    @admin.action(description=_("Unsubscribe from everything"))
    def unsubscribe_all(self, request, queryset):
        for subscriber in queryset:
            preferences.unsubscribe(subscriber=subscriber)
        self.message_user(request, _("%(n)d subscribers unsubscribed.") % {"n": queryset.count()})

    @admin.action(description=_("Suppress: never mail these addresses"))
    def suppress(self, request, queryset):
        for subscriber in queryset:
            suppress_address(email=subscriber.email, reason="admin", detail=f"by {request.user.get_username()}")
        self.message_user(request, _("%(n)d addresses suppressed.") % {"n": queryset.count()})

    @admin.action(description=_("Export as CSV"))
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="dailyq-subscribers-{stamp}.csv"'
        response.write("\ufeff")  # lets spreadsheet programs read UTF-8 (Korean) correctly
        writer = csv.writer(response)
        for row in importing.export_rows(queryset.prefetch_related("verifications").order_by("id")):
            writer.writerow(importing.defuse_cell(value) for value in row)
        return response

    # --- CSV import: upload, preview, confirm ---

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="subscriptions_subscriber_import"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not self.has_add_permission(request):
            return redirect("admin:index")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Import subscribers")}
        if request.method == "POST" and "apply" in request.POST:
            return self._apply_import(request, context)
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > IMPORT_MAX_BYTES:
                form.add_error("file", _("The file is larger than 2 MB."))
            else:
                try:
                    text = upload.read().decode("utf-8")
                except UnicodeDecodeError:
                    form.add_error("file", _("The file is not UTF-8 text."))
                else:
                    plan = importing.plan_subscriber_import(text)
                    request.session[IMPORT_SESSION_KEY] = text
                    context.update(plan=plan, confirm_form=ConfirmImportForm())
                    return TemplateResponse(request, "admin/subscriptions/subscriber/import_preview.html", context)
        context["form"] = form
        return TemplateResponse(request, "admin/subscriptions/subscriber/import.html", context)

    def _apply_import(self, request, context):
        text = request.session.pop(IMPORT_SESSION_KEY, None)
        if text is None:
            self.message_user(request, _("Upload the file again: the preview has expired."), messages.WARNING)
            return redirect("admin:subscriptions_subscriber_import")
        form = ConfirmImportForm(request.POST)
        form.is_valid()
        plan = importing.plan_subscriber_import(text)
        report = importing.import_subscribers(
            plan=plan, already_consented=form.cleaned_data.get("already_consented", False)
        )
        self.message_user(
            request,
            _(
                "Imported %(added)d subscribers (%(mails)d verification mails queued); "
                "%(skipped)d skipped, %(duplicates)d duplicates and %(invalid)d invalid rows left out."
            )
            % {
                "added": report.added,
                "mails": report.verification_mails,
                "skipped": report.skipped,
                "duplicates": len(plan.duplicates),
                "invalid": len(plan.invalid),
            },
        )
        for reason, count in report.not_mailed.items():
            # Said apart, so the count of queued mails is never taken for these.
            self.message_user(
                request,
                _(
                    "%(n)d imported addresses got no verification mail (%(reason)s); they stay pending. "
                    'Once the cause is fixed, send them one with the action "Send a new verification mail".'
                )
                % {"n": count, "reason": reason},
                messages.WARNING,
            )
        return redirect(reverse("admin:subscriptions_subscriber_changelist"))


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    # The preview link comes right after the reader: at the end it was off-screen on a 1400 px screen.
    list_display = ("subscriber", "preview", "category", "is_active", "next_position", "created_at", "last_sent_at")
    list_filter = (TrackFilter, "is_active", "subscriber__frequency", "subscriber__status")
    search_fields = ("subscriber__email",)
    list_select_related = ("subscriber",)
    raw_id_fields = ("subscriber",)
    ordering = ("-created_at",)
    form = SubscriptionForm
    readonly_fields = ("activated_at", "deactivated_at", "last_sent_at")

    def save_model(self, request, obj, form, change):
        admin_services.save_subscription(subscription=obj)

    @admin.display(description=_("today's mail"))
    def preview(self, subscription):
        url = reverse("admin:mailer_preview", args=[subscription.pk])
        return format_html('<a href="{}">{}</a>', url, _("Preview / test-send"))


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("subscriber", "created_at", "expires_at", "attempts", "confirmed_at", "revoked_at")
    list_filter = ("created_at",)
    search_fields = ("subscriber__email",)
    list_select_related = ("subscriber",)
    # Codes are secrets and requests are history: read only.
    fields = readonly_fields = [f.name for f in Verification._meta.fields if f.name != "code_hash"]


@admin.register(SetAsideAddress)
class SetAsideAddressAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the move to canonical addresses set aside, for an admin to settle (or delete once settled)."""

    list_display = ("email", "reason", "subscriber", "kept_by", "created_at")
    list_filter = ("reason",)
    search_fields = ("email",)
    list_select_related = ("subscriber", "kept_by")
    fields = readonly_fields = ("email", "reason", "detail", "subscriber", "kept_by", "created_at")
