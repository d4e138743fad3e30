from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from mailer.models import Suppression
from mailer.services import lift_suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("email", "reason", "created_at", "lifted_at")
    list_filter = ("reason", ("lifted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("email",)
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "lifted_at")
    actions = ["lift"]

    @admin.action(description=_("Lift: allow mail to these addresses again"))
    def lift(self, request, queryset):
        lifted = sum(lift_suppression(email=email) for email in queryset.values_list("email", flat=True).distinct())
        self.message_user(request, _("%(n)d suppressions lifted.") % {"n": lifted})
