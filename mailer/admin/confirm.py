"""The page that asks before an admin's button acts, shared by every family's buttons."""

from django.template.response import TemplateResponse


def confirm_page(request, admin_site, *, title, text, button, cancel_url, form=None, danger=False):
    """A page that asks before an admin's button acts (GET shows it, POST acts)."""
    context = {
        **admin_site.each_context(request),
        "title": title,
        "text": text,
        "button": button,
        "cancel_url": cancel_url,
        "form": form,
        "danger": danger,
    }
    return TemplateResponse(request, "admin/mailer/confirm.html", context)
