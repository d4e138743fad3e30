from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class Suppression(models.Model):
    """An address DailyQ must not mail, verification mails included.

    Bounces and complaints reported by SES, or an admin, put an address here;
    only an admin lifts it (lifted_at), and the row stays as history.
    """

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Bounced")
        COMPLAINT = "complaint", _("Complaint")
        ADMIN = "admin", _("Suppressed by an admin")

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
                Lower("email"), condition=models.Q(lifted_at__isnull=True), name="suppression_one_active_per_email"
            ),
        ]

    def __str__(self):
        return f"{self.email} ({self.get_reason_display()})"
