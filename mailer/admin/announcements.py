"""Announcements: write one, preview and test-send it, then send or schedule it."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from mailer import selectors
from mailer.admin.confirm import confirm_page
from mailer.admin.previews import html_part_response, message_context
from mailer.models import Announcement
from mailer.sending import announcements
from subscriptions import tracks


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
            **message_context(
                message, html_url=reverse("admin:mailer_announcement_preview_html", args=[announcement.pk, language])
            ),
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
        return html_part_response(announcements.preview_announcement(announcement=announcement, language=language))

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
