"""What stops mail to an address: suppressions, and the SES events that lead to them."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from mailer import selectors, suppressions
from mailer.admin.filters import EventSubscriberFilter
from mailer.models import SESEvent, Suppression
from mailservice.admin_mixins import ReadOnlyAdminMixin
from subscriptions.addresses import address_hash
from subscriptions.forms import clean_email_field


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


@admin.register(SESEvent)
class SESEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "kind", "bounce_type", "email", "ses_message_id", "delivery")
    list_filter = ("kind", "bounce_type", EventSubscriberFilter, "received_at")
    search_fields = ("email", "ses_message_id")
    list_select_related = ("delivery",)
    readonly_fields = [f.name for f in SESEvent._meta.fields]
