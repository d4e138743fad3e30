from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic.base import RedirectView

from mailer.dashboard import dashboard
from mailer.webhooks import SESEventsView
from mailservice import views

admin.site.site_header = _("DailyQ administration")
admin.site.site_title = _("DailyQ admin")

urlpatterns = [
    # Browsers and feed readers ask for /favicon.ico whatever the page links.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico")), name="favicon"),
    path(settings.ADMIN_URL + "dashboard/", admin.site.admin_view(dashboard), name="dashboard"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("source.tar.gz", views.source_code, name="source-code"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ses/events/", SESEventsView.as_view(), name="ses-events"),
    path("", include("subscriptions.urls")),
    path("", include("mailer.urls")),
]

if not settings.PRODUCTION:
    # Development pages (DEBUG on at startup); never mounted in production.
    urlpatterns += [path("dev/outbox/", include("mailer.dev_urls"))]
