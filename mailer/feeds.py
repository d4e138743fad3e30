"""An Atom feed per category (/archive/<category>/feed/): its newest published questions.

Links and ids are built on SITE_URL, not on the requesting host, so an
entry's id stays the same whoever fetches the feed.
"""

from django.contrib.syndication.views import Feed
from django.http import Http404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from mailer import archive
from mailer.emails import absolute_url
from subscriptions import tracks


class PlainSummaryAtomFeed(Atom1Feed):
    """Atom with the summary marked as plain text: Django's says HTML, and a question's text is not."""

    def add_item_elements(self, handler, item):
        super().add_item_elements(handler, {**item, "description": None})
        if item["description"]:
            handler.addQuickElement("summary", item["description"], {"type": "text"})


class CategoryFeed(Feed):
    feed_type = PlainSummaryAtomFeed

    def get_object(self, request, category):
        if tracks.get(category) is None:
            raise Http404("No such category.")
        return category

    def title(self, category):
        return _("DailyQ: %(category)s questions") % {"category": tracks.label(category)}

    def subtitle(self, category):
        return _("Interview questions as DailyQ mails them, newest first; the answers are on the site.")

    def link(self, category):
        return absolute_url(reverse("mailer:archive", args=[category]))

    def feed_url(self, category):
        return absolute_url(reverse("mailer:feed", args=[category]))

    def items(self, category):
        return archive.feed_questions(category=category)

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return archive.question_summary(item)

    def item_link(self, item):
        return absolute_url(reverse("mailer:question", args=[item.pk]))

    def item_pubdate(self, item):
        return item.created_at

    def item_updateddate(self, item):
        return item.updated_at
