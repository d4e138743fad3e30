from mailer.models import Suppression


def is_suppressed(*, email: str) -> bool:
    return Suppression.objects.filter(email__iexact=email, lifted_at__isnull=True).exists()
