from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from mailer.schedule_text import schedule_text
from subscriptions import tracks
from subscriptions.addresses import canonical_email
from subscriptions.models import Frequency


class EmailInput(forms.EmailInput):
    def __init__(self):
        super().__init__(
            attrs={"autocomplete": "email", "inputmode": "email", "placeholder": "you@example.com", "autofocus": True}
        )


def clean_email_field(value: str) -> str:
    """The address in its canonical form (subscriptions.addresses), or one clear error."""
    try:
        return canonical_email(value)
    except ValidationError as exc:
        raise ValidationError(exc.messages[0], code=getattr(exc, "code", None)) from None


def frequency_choices() -> list[tuple[str, str]]:
    """Each frequency's short name, and beside it when its mail comes (the send schedule in force)."""
    text = schedule_text()
    return [
        (value, format_html('{} <span class="muted">&middot; {}</span>', label, text.mail(value)))
        for value, label in Frequency.choices
    ]


class SubscribeForm(forms.Form):
    # Length is checked by canonical_email, with a clearer message than the
    # browser's silent maxlength cut.
    email = forms.CharField(label=_("Email"), widget=EmailInput(), max_length=1000)
    categories = forms.MultipleChoiceField(
        label=_("Categories"),
        choices=tracks.choices,  # called each time the form is shown: the tracks offered now
        widget=forms.CheckboxSelectMultiple,
        initial=lambda: tracks.offered_slugs()[:1],
        error_messages={"required": _("Choose at least one category.")},
    )
    frequency = forms.ChoiceField(
        label=_("How often"), choices=frequency_choices, widget=forms.RadioSelect, initial=Frequency.DAILY
    )
    consent = forms.BooleanField(
        label=_("I agree to the privacy policy."),
        error_messages={"required": _("Please agree to the privacy policy to subscribe.")},
    )

    def clean_email(self):
        return clean_email_field(self.cleaned_data["email"])


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code"),
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9]{6}",
                "autofocus": True,
            }
        ),
        error_messages={
            "min_length": _("The code has 6 digits."),
            "max_length": _("The code has 6 digits."),
        },
    )

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise ValidationError(_("The code has 6 digits."))
        return code


class PreferencesForm(forms.Form):
    categories = forms.MultipleChoiceField(
        label=_("Categories"),
        choices=tracks.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one category, or unsubscribe below.")},
    )
    frequency = forms.ChoiceField(label=_("How often"), choices=frequency_choices, widget=forms.RadioSelect)
