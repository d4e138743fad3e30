from django.urls import path

from mailer import views

app_name = "mailer"

urlpatterns = [
    path("questions/<int:pk>/", views.question, name="question"),
    path("archive/<str:category>/", views.archive, name="archive"),
]
