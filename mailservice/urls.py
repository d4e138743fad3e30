from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from mailer.dashboard import dashboard
from mailer.webhooks import SESEventsView
from mailservice import views

urlpatterns = [
    path(settings.ADMIN_URL + "dashboard/", admin.site.admin_view(dashboard), name="dashboard"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ses/events/", SESEventsView.as_view(), name="ses-events"),
    path("", include("subscriptions.urls")),
    path("", include("mailer.urls")),
]

if not settings.PRODUCTION:
    # Development pages (DEBUG on at startup); never mounted in production.
    urlpatterns += [path("dev/outbox/", include("mailer.dev_urls"))]
