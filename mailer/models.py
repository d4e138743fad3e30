from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mailer.markdown import validate_markdown_size
from subscriptions.addresses import address_hash
from subscriptions.models import Frequency, validate_offered_track, validate_track


class Suppression(models.Model):
    """An address DailyQ must not mail, verification mails included.

    Bounces and complaints reported by SES, or an admin, put an address here;
    only an admin lifts it (lifted_at), and the row stays as history.
    """

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Bounced")
        COMPLAINT = "complaint", _("Complaint")
        ADMIN = "admin", _("Suppressed by an admin")

    # The canonical form (subscriptions.addresses), as a subscriber's is;
    # empty once its owner is erased, when only the hash tells the address.
    email = models.EmailField(_("email"), max_length=254, blank=True)
    # subscriptions.addresses.address_hash of the address: what the gate checks
    # too, so a suppression outlives the erasure of its address.
    email_hash = models.CharField(_("address hash"), max_length=64, editable=False)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(_("suppressed"), auto_now_add=True)
    lifted_at = models.DateTimeField(_("lifted"), null=True, blank=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        constraints = [
            models.UniqueConstraint(
                fields=["email"],
                condition=models.Q(lifted_at__isnull=True) & ~models.Q(email=""),
                name="suppression_one_active_per_email",
            ),
            models.UniqueConstraint(
                fields=["email_hash"],
                condition=models.Q(lifted_at__isnull=True),
                name="suppression_one_active_per_hash",
            ),
        ]

    def __str__(self):
        return f"{self.email or _('(erased address)')} ({self.get_reason_display()})"

    def save(self, *args, **kwargs):
        if self.email:
            self.email_hash = address_hash(self.email)
        super().save(*args, **kwargs)


class ErasedAddress(models.Model):
    """An address whose owner was erased, as a keyed hash only (subscriptions.erasure).

    An SES event about it that arrives later (a bounce of an earlier mail) is
    stored and acted on without the address, unless it is a subscriber again.
    """

    email_hash = models.CharField(_("address hash"), max_length=64, unique=True)
    erased_at = models.DateTimeField(_("erased"))

    class Meta:
        verbose_name = _("erased address")
        verbose_name_plural = _("erased addresses")

    def __str__(self):
        return f"{self.email_hash[:12]}… @ {self.erased_at:%Y-%m-%d}"


class Question(models.Model):
    """One interview question and its answer, at a position in its category's sequence."""

    category = models.CharField(_("category"), max_length=16, validators=[validate_track])  # a Track's slug
    position = models.PositiveIntegerField(_("position"))
    # The Korean text and the English one; a question has one or both (the
    # constraints below), and mailer.selectors.question_text picks one for a reader.
    title = models.CharField(_("title"), max_length=300, blank=True)
    # Bounded for the time a render takes; no database constraint, so rows stored
    # before the bound stay readable (they are shown as plain text).
    question_md = models.TextField(_("question details (Markdown)"), blank=True, validators=[validate_markdown_size])
    answer_md = models.TextField(_("answer (Markdown)"), blank=True, validators=[validate_markdown_size])
    title_en = models.CharField(_("title (English)"), max_length=300, blank=True)
    question_md_en = models.TextField(
        _("question details (Markdown, English)"), blank=True, validators=[validate_markdown_size]
    )
    answer_md_en = models.TextField(_("answer (Markdown, English)"), blank=True, validators=[validate_markdown_size])
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
            # Each language's text is whole (a title and an answer) or absent, and one language is there.
            models.CheckConstraint(
                condition=Q(title="", question_md="", answer_md="") | (~Q(title="") & ~Q(answer_md="")),
                name="question_korean_text_whole",
                violation_error_message=_("The Korean text needs both a title and an answer, or neither."),
            ),
            models.CheckConstraint(
                condition=Q(title_en="", question_md_en="", answer_md_en="") | (~Q(title_en="") & ~Q(answer_md_en="")),
                name="question_english_text_whole",
                violation_error_message=_("The English text needs both a title and an answer, or neither."),
            ),
            models.CheckConstraint(
                condition=~Q(title="") | ~Q(title_en=""),
                name="question_has_text",
                violation_error_message=_("A question needs its text in Korean, in English, or in both."),
            ),
        ]

    def __str__(self):
        return f"[{self.category} #{self.position}] {self.title or self.title_en}"


class Announcement(models.Model):
    """A notice mailed once to an audience of readers (mailer.sending.announcements).

    It is sent as a send run of its own kind: the same deliveries, claims,
    pacing, quota and reports as a daily send. An empty audience field means
    everyone; the run, once started, is unique per announcement.
    """

    subject = models.CharField(_("subject"), max_length=150)
    body_md = models.TextField(
        _("body (Markdown)"), validators=[validate_markdown_size], help_text=_("Rendered and sanitised as answers are.")
    )
    category = models.CharField(
        _("category"),
        max_length=16,
        blank=True,
        validators=[validate_offered_track],
        help_text=_("Empty: every category."),
    )
    frequency = models.CharField(
        _("frequency"), max_length=16, choices=Frequency, blank=True, help_text=_("Empty: daily and weekly readers.")
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True, help_text=_("Empty: every language.")
    )
    # Beat starts it at this moment (mailer.sending.announcements.start_due_announcements).
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("announcement")
        verbose_name_plural = _("announcements")
        ordering = ["-created_at"]

    def __str__(self):
        return self.subject


class SendRun(models.Model):
    """One send: a day's daily mail, or one announcement; created once, however often it is triggered."""

    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")

    class Kind(models.TextChoices):
        DAILY = "daily", _("Daily questions")
        ANNOUNCEMENT = "announcement", _("Announcement")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind, default=Kind.DAILY)
    announcement = models.ForeignKey(
        Announcement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs",
        verbose_name=_("announcement"),
    )
    # The send day of a daily run; the day an announcement started.
    day = models.DateField(_("send day"))
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
        ordering = ["-day", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["day"], condition=Q(kind="daily"), name="sendrun_one_daily_per_day"),
            models.UniqueConstraint(
                fields=["announcement"], condition=Q(kind="announcement"), name="sendrun_once_per_announcement"
            ),
            models.CheckConstraint(
                condition=Q(kind="daily", announcement__isnull=True)
                | Q(kind="announcement", announcement__isnull=False),
                name="sendrun_kind_matches_announcement",
            ),
        ]

    def __str__(self):
        if self.kind == self.Kind.ANNOUNCEMENT:
            return f"{self.day:%Y-%m-%d} {_('Announcement')} #{self.announcement_id}"
        return f"{self.day:%Y-%m-%d}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Delivery(models.Model):
    """One subscription's mail of one send day, or one reader's mail of an announcement."""

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
    # Empty once its reader is erased (subscriptions.erasure): the row stays, without
    # the person, so the run's counts stay right.
    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    # An announcement's reader (one mail per person, whatever their categories);
    # empty for daily mail, which is per subscription.
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # The question(s) this mail carries: one, or five for a weekly digest; none for an announcement.
    question_ids = models.JSONField(_("questions"), default=list)
    # The reader's due reviews it carries below them (the oldest due first), chosen
    # when the run made the row; they never move the reader's cursor.
    review_question_ids = models.JSONField(_("reviews"), default=list, blank=True)
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
            # Led by subscriber, so erasing a person finds their rows through it.
            models.UniqueConstraint(
                fields=["subscriber", "run"], condition=Q(subscriber__isnull=False), name="delivery_once_per_person"
            ),
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


def default_send_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday to Friday (date.weekday())


class SendSchedule(models.Model):
    """When the daily send starts: one row, edited in the admin and read by
    selectors.send_start. Without a row, DAILY_SEND_HOUR/MINUTE Mon-Fri apply."""

    send_time = models.TimeField(_("send time"), help_text=_("Korean time (Asia/Seoul)."))
    # date.weekday() numbers: 0 is Monday.
    weekdays = models.JSONField(_("send days"), default=default_send_weekdays)
    skip_korean_holidays = models.BooleanField(
        _("skip Korean public holidays"),
        default=False,
        help_text=_("No mail on the public holidays of the Republic of Korea, substitute holidays included."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("send schedule")
        verbose_name_plural = _("send schedule")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="send_schedule_single_row")]

    def __str__(self):
        return str(_("Send schedule"))


class SkipDate(models.Model):
    """A day with no daily send, whatever its weekday."""

    schedule = models.ForeignKey(SendSchedule, on_delete=models.CASCADE, related_name="skip_dates")
    day = models.DateField(_("date"), unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("skip date")
        verbose_name_plural = _("skip dates")
        ordering = ["day"]

    def __str__(self):
        return f"{self.day:%Y-%m-%d}"


class MissedDay(models.Model):
    """A send day whose run had not started by its send time plus the grace:
    recorded once (so ADMINS are told once), shown in the admin until started."""

    day = models.DateField(_("send day"), unique=True)
    scheduled_at = models.DateTimeField(_("scheduled start"))
    detected_at = models.DateTimeField(_("noticed"))
    alerted_at = models.DateTimeField(_("admins told"), null=True, blank=True)
    # When the day's run was started after all (the late policy, or an admin's button).
    started_at = models.DateTimeField(_("started late"), null=True, blank=True)

    class Meta:
        verbose_name = _("missed send day")
        verbose_name_plural = _("missed send days")
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day:%Y-%m-%d}"


class BankWrapNotice(models.Model):
    """ADMINS were told that readers of a category will come to the end of its
    questions and start again from the first: once per category and bank end
    (the last published position), so a bank that grows gets a new notice."""

    category = models.CharField(_("category"), max_length=16)  # a Track's slug
    last_position = models.PositiveIntegerField(_("last question position"))
    questions = models.PositiveIntegerField(_("published questions"))
    wraps_on = models.DateField(_("first reader starts again on"))
    readers = models.PositiveIntegerField(_("readers starting again within the notice"))
    noticed_at = models.DateTimeField(_("noticed"))
    alerted_at = models.DateTimeField(_("admins told"), null=True, blank=True)

    class Meta:
        verbose_name = _("end-of-bank notice")
        verbose_name_plural = _("end-of-bank notices")
        ordering = ["-noticed_at"]
        constraints = [
            models.UniqueConstraint(fields=["category", "last_position"], name="bank_wrap_notice_once_per_end")
        ]

    def __str__(self):
        return f"{self.category} #{self.last_position} → #1 ({self.wraps_on:%Y-%m-%d})"
