"""sitemap.xml: the landing page, the privacy policy, the archives and every published question.

URLs are built on SITE_URL (its scheme and host), not on the requesting host.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import sitemaps
from django.urls import reverse

from mailer.models import Question
from subscriptions import tracks


class SiteUrlSitemap(sitemaps.Sitemap):
    def get_domain(self, site=None):
        return urlsplit(settings.SITE_URL).netloc

    def get_protocol(self, protocol=None):
        return urlsplit(settings.SITE_URL).scheme


class PagesSitemap(SiteUrlSitemap):
    def items(self):
        return ["subscriptions:landing", "subscriptions:privacy"]

    def location(self, item):
        return reverse(item)


class ArchivesSitemap(SiteUrlSitemap):
    changefreq = "weekly"

    def items(self):
        return tracks.all_slugs()

    def location(self, item):
        return reverse("mailer:archive", args=[item])


class QuestionsSitemap(SiteUrlSitemap):
    changefreq = "monthly"

    def items(self):
        return Question.objects.filter(is_published=True).order_by("category", "position").only("id", "updated_at")

    def location(self, item):
        return reverse("mailer:question", args=[item.pk])

    def lastmod(self, item):
        return item.updated_at


SITEMAPS = {"pages": PagesSitemap, "archives": ArchivesSitemap, "questions": QuestionsSitemap}
