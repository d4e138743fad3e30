"""Admin list filters of subscriptions' data that the mailer's admin uses too."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from subscriptions import tracks


class TrackFilter(admin.SimpleListFilter):
    """Rows by track, named as the operator named them; retired tracks listed too."""

    title = _("category")
    parameter_name = "category"
    field = "category"

    def lookups(self, request, model_admin):
        return tracks.choices(retired=True)

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset
