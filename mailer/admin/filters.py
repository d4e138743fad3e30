"""The list filters more than one family's admin uses: by track, and by subscriber."""

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from subscriptions.admin_filters import TrackFilter
from subscriptions.models import Subscriber


class DeliveryTrackFilter(TrackFilter):
    field = "subscription__category"


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
