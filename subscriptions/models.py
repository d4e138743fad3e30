from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Track(models.Model):
    """A category of questions readers subscribe to (backend, frontend, ...), edited in the admin.

    Rows name it by its slug (Subscription, Question, Delivery runs), so a slug
    never changes once made; a track that is no longer wanted is retired, not deleted.
    """

    slug = models.SlugField(
        _("slug"),
        max_length=16,
        unique=True,
        help_text=_("Lowercase letters, digits and hyphens; fixed once created (it is in links and imports)."),
    )
    name_ko = models.CharField(_("name in Korean"), max_length=60)
    name_en = models.CharField(_("name in English"), max_length=60)
    position = models.PositiveSmallIntegerField(_("order"), default=0, help_text=_("Lower comes first."))
    is_active = models.BooleanField(
        _("offered"),
        default=True,
        help_text=_("A retired track is no longer offered or mailed; its questions stay in the archive."),
    )
    start_position = models.PositiveIntegerField(
        _("start position"), default=1, help_text=_("The question a new subscription starts at.")
    )

    class Meta:
        verbose_name = _("track")
        verbose_name_plural = _("tracks")
        ordering = ["position", "slug"]

    def __str__(self):
        return self.name

    @property
    def name(self) -> str:
        """The track's name in the active language (English for every language but Korean)."""
        return self.name_ko if (get_language() or "ko").startswith("ko") else self.name_en


class Frequency(models.TextChoices):
    # Short names for lists and the admin; when mail comes is the send schedule's
    # to say (mailer.schedule_text), next to these wherever a reader chooses.
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly digest")


class Subscriber(models.Model):
    """One email address. Its mail goes out per category (Subscription)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending confirmation")
        ACTIVE = "active", _("Active")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    # The canonical form (subscriptions.addresses), so one mailbox is one row,
    # found by plain equality.
    email = models.EmailField(_("email"), max_length=254)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    frequency = models.CharField(_("frequency"), max_length=16, choices=Frequency, default=Frequency.DAILY)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default="ko")
    # Signed into the links of the reader's mails; a new subscription after an
    # old one raises it, so the old mails' links stop managing it.
    link_generation = models.PositiveIntegerField(_("link generation"), default=0, editable=False)
    consented_at = models.DateTimeField(_("consented to the privacy policy"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        constraints = [
            models.UniqueConstraint(fields=["email"], name="subscriber_email_unique"),
            # What the database can check of the canonical form: ASCII and lower case.
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")) & models.Q(email__regex=r"^[ -~]+\Z"),
                name="subscriber_email_canonical",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="active") | models.Q(confirmed_at__isnull=False),
                name="subscriber_active_is_confirmed",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return self.email


def validate_track(slug: str) -> None:
    """A category field names a Track (retired ones included: their rows stay)."""
    if not Track.objects.filter(slug=slug).exists():
        raise ValidationError(_("No track is called %(slug)s."), code="unknown_track", params={"slug": slug})


def validate_offered_track(slug: str) -> None:
    """A choice a reader or operator makes now names a track that is offered (not retired)."""
    if not Track.objects.filter(slug=slug, is_active=True).exists():
        raise ValidationError(_("%(slug)s is not an offered track."), code="not_offered_track", params={"slug": slug})


class SubscriptionQuerySet(models.QuerySet):
    def mailed(self):
        """Subscriptions that get mail: active ones of a track that is offered (not retired)."""
        return self.filter(is_active=True, category__in=Track.objects.filter(is_active=True).values("slug"))


class Subscription(models.Model):
    """A subscriber's sequence of questions in one category."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    # The slug of a Track (subscriptions.tracks).
    category = models.CharField(_("category"), max_length=16, validators=[validate_track])
    is_active = models.BooleanField(_("active"), default=True)
    # Position (in the category's sequence) of the next question to send.
    next_position = models.PositiveIntegerField(_("next question position"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)
    last_sent_at = models.DateTimeField(_("last mail"), null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "category"], name="subscription_unique_category"),
        ]
        indexes = [models.Index(fields=["category", "is_active"])]

    def __str__(self):
        return f"{self.subscriber.email} · {self.category}"


class Verification(models.Model):
    """One subscribe request: the choices made and the code mailed to confirm them.

    The choices live here, not on the subscriber, until the address is
    confirmed: a form anyone can submit must not change an existing
    subscriber's settings.
    """

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="verifications")
    categories = models.JSONField(_("categories"))
    frequency = models.CharField(_("frequency"), max_length=16, choices=Frequency)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    # HMAC of the 6-digit code; empty until the worker that mails it issues it.
    code_hash = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(_("wrong attempts"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("verification")
        verbose_name_plural = _("verifications")
        indexes = [models.Index(fields=["subscriber", "-created_at"])]

    def __str__(self):
        return f"{self.subscriber.email} @ {self.created_at:%Y-%m-%d %H:%M}"


class SetAsideAddress(models.Model):
    """A stored address that had no place once addresses became canonical (migration 0002).

    Either it is not one DailyQ can mail (a local part that is not ASCII), or
    it is another spelling of an address a subscriber kept. Its subscriber
    row stays, with its history, under a placeholder address that gets no
    mail; an admin decides what to do with it.
    """

    class Reason(models.TextChoices):
        INVALID = "invalid", _("Not an address DailyQ can mail")
        DUPLICATE = "duplicate", _("Another spelling of a kept subscriber's address")

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="+", verbose_name=_("subscriber set aside")
    )
    email = models.CharField(_("address as it was stored"), max_length=1000)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    detail = models.TextField(_("detail"), blank=True)
    # Erasing the subscriber that kept the address erases its other spellings too.
    kept_by = models.ForeignKey(
        Subscriber,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("subscriber that kept the address"),
    )
    created_at = models.DateTimeField(_("set aside"), auto_now_add=True)

    class Meta:
        verbose_name = _("address set aside")
        verbose_name_plural = _("addresses set aside")

    def __str__(self):
        return self.email


ANSWER_MAX_LENGTH = 5000


class Rating(models.TextChoices):
    KNEW = "knew", _("I knew it")
    PARTLY = "partly", _("Partly")
    AGAIN = "again", _("I didn't know")


class Answer(models.Model):
    """One reader's encounter with one question: their own answer, their rating
    and when the question comes back as a review (subscriptions/reviews.py).

    Made when the reader first follows the question's link from a mail; it
    belongs to the subscription and goes with it.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey("mailer.Question", on_delete=models.CASCADE, related_name="answers")
    # Plain text, shown escaped; empty when the reader only looked.
    text = models.TextField(_("own answer"), blank=True, max_length=ANSWER_MAX_LENGTH)
    rating = models.CharField(_("rating"), max_length=8, choices=Rating, blank=True)
    rated_at = models.DateTimeField(_("rated"), null=True, blank=True)
    # When the model answer was shown in this round; a review starts a new round, hidden again.
    revealed_at = models.DateTimeField(_("answer shown"), null=True, blank=True)
    # Which interval of REVIEW_INTERVALS comes next; no next_review_on: nothing due (knew, or never rated).
    review_step = models.PositiveSmallIntegerField(_("review step"), default=0)
    next_review_on = models.DateField(_("next review"), null=True, blank=True)
    reviews_sent = models.PositiveIntegerField(_("reviews sent"), default=0)
    last_review_on = models.DateField(_("last review sent"), null=True, blank=True)
    opened_from_mail_at = models.DateTimeField(_("first opened from a mail"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [
            models.UniqueConstraint(fields=["subscription", "question"], name="answer_once_per_question"),
            models.CheckConstraint(condition=models.Q(rating__in=["", *Rating.values]), name="answer_rating_known"),
        ]
        indexes = [
            # The send path's question: whose reviews are due on a day.
            models.Index(
                fields=["next_review_on", "subscription"], condition=Q(next_review_on__isnull=False), name="answer_due"
            ),
            models.Index(fields=["question", "rating"], name="answer_question_rating"),
        ]

    def __str__(self):
        return f"{self.subscription_id} · {self.question_id} ({self.rating or '-'})"


class UnsubscribeReason(models.Model):
    """Why someone unsubscribed, if they said: counted, never tied to a person."""

    class Reason(models.TextChoices):
        TOO_MANY = "too_many", _("Too many mails")
        TOO_HARD = "too_hard", _("Too hard")
        TOO_EASY = "too_easy", _("Too easy")
        NOT_RELEVANT = "not_relevant", _("Not relevant to me")
        OTHER = "other", _("Other")

    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    # Only for "other"; free text the reader chose to give, with no link to them.
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("given"), auto_now_add=True)

    class Meta:
        verbose_name = _("unsubscribe reason")
        verbose_name_plural = _("unsubscribe reasons")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reason__in=["too_many", "too_hard", "too_easy", "not_relevant", "other"]),
                name="unsubscribe_reason_known",
            ),
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self):
        return self.get_reason_display()
