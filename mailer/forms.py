from django import forms
from django.utils.translation import gettext_lazy as _

from mailer.archive import SEARCH_MAX_LENGTH


class SearchForm(forms.Form):
    # CharField also refuses NUL characters, which PostgreSQL cannot store or compare.
    q = forms.CharField(
        label=_("Search the questions"),
        required=False,
        max_length=SEARCH_MAX_LENGTH,
        error_messages={"max_length": _("Search for at most %(limit_value)d characters (this has %(show_value)d).")},
    )
