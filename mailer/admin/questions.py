"""The question bank, and the tracks whose start positions it checks.

Track is a subscriptions model, but its admin lives here: a track's start
position is validated against the bank.
"""

import uuid

from django import forms
from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mailer import question_stats, questions, selectors
from mailer.markdown import render_markdown
from mailer.models import Question
from subscriptions import tracks
from subscriptions.admin_filters import TrackFilter
from subscriptions.models import Track


class QuestionForm(forms.ModelForm):
    move_to = forms.IntegerField(
        label=_("position"),
        min_value=1,
        required=False,
        help_text=_("Leave empty to add at the end. Changing it moves the question and shifts the others."),
    )

    class Meta:
        model = Question
        # The position is not edited as a model field: `move_to` is applied by move_question,
        # which keeps (category, position) unique while the others shift.
        fields = [
            "category", "title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en",
            "is_published", "source_key", "license", "license_url", "attribution",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Retired tracks too: their archive is still kept and edited.
        self.fields["category"] = forms.ChoiceField(label=_("category"), choices=tracks.choices(retired=True))
        if self.instance.pk:
            self.fields["move_to"].initial = self.instance.position
        self.fields["source_key"].required = False
        self.fields["source_key"].help_text = _(
            "Where the question came from; an import of the same file updates it. "
            "Leave empty for a question written here."
        )

    def clean_source_key(self):
        return self.cleaned_data["source_key"] or f"admin:{uuid.uuid4().hex}"


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    form = QuestionForm
    list_display = ("position", "any_title", "title_en", "category", "is_published", "figures", "updated_at")
    list_display_links = ("any_title",)
    list_filter = (TrackFilter, "is_published")
    search_fields = ("title", "title_en", "source_key")
    ordering = ("category", "position")
    readonly_fields = ("preview", "figures")
    fields = (
        "category", "move_to", "title", "question_md", "answer_md", "title_en", "question_md_en", "answer_md_en",
        "is_published", "source_key", "license", "license_url", "attribution", "preview",
    )  # fmt: skip
    actions = ["publish", "unpublish"]

    def get_fields(self, request, obj=None):
        return [*super().get_fields(request, obj), *(("figures",) if obj is not None else ())]

    def get_changelist_instance(self, request):
        # The readers' figures for the listed page, in two grouped queries, not two per row.
        changelist = super().get_changelist_instance(request)
        listed = list(changelist.result_list)
        found = question_stats.question_figures(question_ids=[question.pk for question in listed])
        for question in listed:
            question.reader_figures = found.get(question.pk, question_stats.QuestionFigures())
        return changelist

    @admin.display(description=_("mailed · opened · answers written · knew/partly/didn't know · reviews sent"))
    def figures(self, question):
        if not question.pk:
            return "—"
        figures = getattr(question, "reader_figures", None)
        if figures is None:
            figures = question_stats.question_figures(question_ids=[question.pk]).get(
                question.pk, question_stats.QuestionFigures()
            )
        return (
            f"{figures.mailed} · {figures.opened} · {figures.answers_written} · "
            f"{figures.knew}/{figures.partly}/{figures.again} · {figures.reviews_sent}"
        )

    @admin.display(description=_("title"), ordering="title")
    def any_title(self, question):
        # An English-only question has no Korean title; its link still needs a text.
        return question.title or question.title_en

    @admin.display(description=_("preview"))
    def preview(self, question):
        if not question.pk:
            return "—"
        texts = [[getattr(question, name) for name in selectors.text_fields(lang)] for lang in selectors.TEXT_LANGUAGES]
        return format_html_join(
            "",
            '<div class="dailyq-preview" lang="{}"><h3>{}</h3>{}<hr>{}</div>',
            (
                (lang, title, render_markdown(question_md), render_markdown(answer_md))
                for lang, (title, question_md, answer_md) in zip(selectors.TEXT_LANGUAGES, texts, strict=True)
                if title
            ),
        )

    def save_model(self, request, obj, form, change):
        # The position field shows where the question is; left as shown, it asks for no move
        # (a question given another category goes to that category's end).
        wanted = form.cleaned_data.get("move_to") if "move_to" in form.changed_data else None
        questions.save_question(question=obj, position=wanted)

    def delete_model(self, request, obj):
        questions.delete_questions(question_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        questions.delete_questions(question_ids=list(queryset.values_list("pk", flat=True)))

    @admin.action(description=_("Publish"))
    def publish(self, request, queryset):
        count = questions.publish_questions(question_ids=list(queryset.values_list("pk", flat=True)), published=True)
        self.message_user(
            request, ngettext("%(n)d question published.", "%(n)d questions published.", count) % {"n": count}
        )

    @admin.action(description=_("Unpublish (never sent, hidden from the site)"))
    def unpublish(self, request, queryset):
        count = questions.publish_questions(question_ids=list(queryset.values_list("pk", flat=True)), published=False)
        self.message_user(
            request,
            ngettext(
                "%(n)d question unpublished: it is not sent and not shown on the site.",
                "%(n)d questions unpublished: they are not sent and not shown on the site.",
                count,
            )
            % {"n": count},
        )


class TrackForm(forms.ModelForm):
    class Meta:
        model = Track
        fields = ["slug", "name_ko", "name_en", "position", "is_active", "start_position"]

    def clean(self):
        cleaned = super().clean()
        slug = cleaned.get("slug") or self.instance.slug
        position = cleaned.get("start_position")
        if slug and position is not None:
            try:
                questions.validate_start_position(category=slug, position=position)
            except forms.ValidationError as error:
                self.add_error("start_position", error)
        return cleaned


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    """Tracks readers choose from. A track is retired (unticked), never deleted: rows name it."""

    form = TrackForm
    list_display = ("name_ko", "name_en", "slug", "position", "is_active", "start_position", "published")
    list_display_links = ("name_ko", "name_en")
    list_editable = ("position", "is_active", "start_position")

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=TrackForm, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # Subscriptions, questions and links name a track by its slug.
        return ("slug",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("published questions"))
    def published(self, track):
        return Question.objects.filter(category=track.slug, is_published=True).count()
