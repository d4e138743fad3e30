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
