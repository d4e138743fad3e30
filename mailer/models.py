from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mailer.markdown import validate_markdown_size
from subscriptions.models import Category


class Suppression(models.Model):
    """An address DailyQ must not mail, verification mails included.

    Bounces and complaints reported by SES, or an admin, put an address here;
    only an admin lifts it (lifted_at), and the row stays as history.
    """

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Bounced")
        COMPLAINT = "complaint", _("Complaint")
        ADMIN = "admin", _("Suppressed by an admin")

    # The canonical form (subscriptions.addresses), as a subscriber's is.
    email = models.EmailField(_("email"), max_length=254)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(_("suppressed"), auto_now_add=True)
    lifted_at = models.DateTimeField(_("lifted"), null=True, blank=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        constraints = [
            models.UniqueConstraint(
                fields=["email"], condition=models.Q(lifted_at__isnull=True), name="suppression_one_active_per_email"
            ),
        ]

    def __str__(self):
        return f"{self.email} ({self.get_reason_display()})"


class Question(models.Model):
    """One interview question and its answer, at a position in its category's sequence."""

    category = models.CharField(_("category"), max_length=16, choices=Category)
    position = models.PositiveIntegerField(_("position"))
    title = models.CharField(_("title"), max_length=300)
    # Bounded for the time a render takes; no database constraint, so rows stored
    # before the bound stay readable (they are shown as plain text).
    question_md = models.TextField(_("question details (Markdown)"), blank=True, validators=[validate_markdown_size])
    answer_md = models.TextField(_("answer (Markdown)"), validators=[validate_markdown_size])
    is_published = models.BooleanField(_("published"), default=True)
    # Where the question came from ("starter:backend/001-http.md", an import path):
    # re-importing the same source updates instead of duplicating.
    source_key = models.CharField(_("source key"), max_length=300, unique=True)
    # Shown under the answer when the source asks for credit (the bundled bank: CC BY-SA 4.0).
    license = models.CharField(_("license"), max_length=100, blank=True, help_text=_("e.g. CC BY-SA 4.0"))
    license_url = models.CharField(
        _("license address"), max_length=300, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    attribution = models.CharField(
        _("attribution"), max_length=300, blank=True, help_text=_("Who to credit, as the source asks.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["category", "position"]
        constraints = [
            models.UniqueConstraint(fields=["category", "position"], name="question_unique_position"),
        ]

    def __str__(self):
        return f"[{self.get_category_display()} #{self.position}] {self.title}"


class CategorySettings(models.Model):
    """Per-category settings: where a new subscription starts in the sequence."""

    category = models.CharField(_("category"), max_length=16, choices=Category, unique=True)
    start_position = models.PositiveIntegerField(_("start position"), default=1)

    class Meta:
        verbose_name = _("category settings")
        verbose_name_plural = _("category settings")

    def __str__(self):
        return self.get_category_display()


class SendRun(models.Model):
    """One send day: created once, however often it is triggered."""

    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")

    day = models.DateField(_("send day"), unique=True)
    # Subscriptions activated after this moment start on the next send day.
    cutoff = models.DateTimeField(_("cut-off"))
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.CREATED)
    total = models.PositiveIntegerField(_("deliveries"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    report_sent_at = models.DateTimeField(_("report sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("send run")
        verbose_name_plural = _("send runs")
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day:%Y-%m-%d}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Delivery(models.Model):
    """One subscription's mail of one send day."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        # Not sent this time (the 24-hour quota ran out): a retry or a later run sends it.
        DEFERRED = "deferred", _("Deferred")

    class Feedback(models.TextChoices):
        NONE = "", _("None yet")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        SOFT_BOUNCED = "soft_bounced", _("Bounced (transient)")
        COMPLAINED = "complained", _("Complaint")

    # Every index is written twice per mail (the claim, then the outcome), so
    # there are only those some query needs; run_id is served by the indexes
    # that start with it.
    run = models.ForeignKey(SendRun, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.CASCADE, related_name="deliveries")
    # The question(s) this mail carries: one, or five for a weekly digest.
    question_ids = models.JSONField(_("questions"), default=list)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    reason = models.TextField(_("reason"), blank=True)
    ses_message_id = models.CharField(_("SES message id"), max_length=200, blank=True)
    # Set by the one worker whose conditional UPDATE moved the row from pending
    # to sending; it then reads back exactly the rows it claimed, by their ids.
    claim = models.CharField(max_length=32, blank=True)
    # Rounds of sending that ended in throttling or passing errors; a few are
    # put back for a later batch before the delivery counts as failed.
    attempts = models.PositiveSmallIntegerField(_("send rounds"), default=0)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    # What SES's Send event said of this mail (the webhook, by the delivery's
    # message tag): it reached SES. Kept apart from the outcome columns, which
    # a batch writes, so that it tells the fate of a mail whose worker died.
    accepted_message_id = models.CharField(_("SES message id (Send event)"), max_length=200, blank=True)
    accepted_at = models.DateTimeField(_("accepted by SES (Send event)"), null=True, blank=True)
    # What SES reported back about this mail (the webhook, by SES message id).
    feedback = models.CharField(_("feedback"), max_length=16, choices=Feedback, blank=True, default="")
    feedback_at = models.DateTimeField(_("feedback received"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["run", "subscription"], name="delivery_once_per_run"),
        ]
        indexes = [
            models.Index(fields=["run", "status"]),
            models.Index(fields=["sent_at"]),
            # The few unsent rows, which a new run supersedes (sending.runs._supersede_older_deliveries).
            models.Index(
                fields=["subscription"], condition=Q(status__in=["pending", "deferred"]), name="delivery_unsent"
            ),
            # SES events find their mail by message id. Equality only: no LIKE
            # (varchar_pattern_ops) index. A batch finds its claimed rows by id.
            models.Index(fields=["ses_message_id"], name="delivery_ses_message_id"),
        ]

    def __str__(self):
        return f"{self.run} → {self.subscription_id} ({self.status})"


class SendingState(models.Model):
    """Whether the daily send may go on: one row, paused by the reputation
    guard or by SES pausing the account, resumed by an admin."""

    paused = models.BooleanField(_("paused"), default=False)
    reason = models.TextField(_("reason"), blank=True)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    resumed_at = models.DateTimeField(_("resumed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("sending state")
        verbose_name_plural = _("sending state")

    def __str__(self):
        return str(_("Paused") if self.paused else _("Sending"))


class SESEvent(models.Model):
    """One event SES reported through SNS (bounce, complaint, delivery)."""

    class Kind(models.TextChoices):
        BOUNCE = "bounce", _("Bounce")
        COMPLAINT = "complaint", _("Complaint")
        DELIVERY = "delivery", _("Delivery")

    # SNS delivers at least once: its message id makes a repeat harmless.
    sns_message_id = models.CharField(max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    bounce_type = models.CharField(_("bounce type"), max_length=32, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    ses_message_id = models.CharField(_("SES message id"), max_length=200, blank=True, db_index=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("SES event")
        verbose_name_plural = _("SES events")
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["email", "-received_at"])]

    def __str__(self):
        return f"{self.kind} {self.email}"
