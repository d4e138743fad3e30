from django.contrib.sitemaps.views import sitemap
from django.urls import path

from mailer import views
from mailer.feeds import CategoryFeed
from mailer.sitemaps import SITEMAPS

app_name = "mailer"

urlpatterns = [
    path("questions/<int:pk>/", views.question, name="question"),
    path("archive/<str:category>/", views.archive, name="archive"),
    path("archive/<str:category>/feed/", CategoryFeed(), name="feed"),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
]
