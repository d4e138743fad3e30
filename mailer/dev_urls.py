"""Development-only pages, mounted under DEBUG (see mailservice/urls.py)."""

from django.urls import path

from mailer import dev_views

app_name = "dev"

urlpatterns = [
    path("", dev_views.outbox, name="outbox"),
    path("<str:message_id>/", dev_views.outbox_message, name="outbox-message"),
    path("<str:message_id>/html/", dev_views.outbox_message_html, name="outbox-message-html"),
]
