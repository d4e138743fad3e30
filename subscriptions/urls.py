from django.urls import path

from subscriptions import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("subscribe/", views.subscribe, name="subscribe"),
    path("verify/", views.verify, name="verify"),
    path("verify/resend/", views.resend, name="resend"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("manage/<str:token>/", views.manage, name="manage"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/reason/", views.unsubscribe_reason, name="unsubscribe_reason"),
    path("answer/<str:token>/", views.answer, name="answer"),
    path("privacy/", views.privacy, name="privacy"),
]
