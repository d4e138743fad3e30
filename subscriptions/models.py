from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    BACKEND = "backend", _("Backend")
    FRONTEND = "frontend", _("Frontend")


class Frequency(models.TextChoices):
    DAILY = "daily", _("Daily, Monday to Friday at 07:00")
    WEEKLY = "weekly", _("Weekly, five questions every Monday at 07:00")


class Subscriber(models.Model):
    """One email address. Its mail goes out per category (Subscription)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending confirmation")
        ACTIVE = "active", _("Active")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    # Stored as entered (trimmed, domain lower-cased); unique case-insensitively.
    email = models.EmailField(_("email"), max_length=254)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    frequency = models.CharField(_("frequency"), max_length=16, choices=Frequency, default=Frequency.DAILY)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default="ko")
    consented_at = models.DateTimeField(_("consented to the privacy policy"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_unique_ci"),
            models.CheckConstraint(
                condition=~models.Q(status="active") | models.Q(confirmed_at__isnull=False),
                name="subscriber_active_is_confirmed",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return self.email


class Subscription(models.Model):
    """A subscriber's sequence of questions in one category."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    category = models.CharField(_("category"), max_length=16, choices=Category)
    is_active = models.BooleanField(_("active"), default=True)
    # Position (in the category's sequence) of the next question to send.
    next_position = models.PositiveIntegerField(_("next question position"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)
    last_sent_at = models.DateTimeField(_("last mail"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "category"], name="subscription_unique_category"),
        ]
        indexes = [models.Index(fields=["category", "is_active"])]

    def __str__(self):
        return f"{self.subscriber.email} · {self.get_category_display()}"


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
