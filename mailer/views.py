from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from mailer import archive as archive_reads
from mailer.emails import absolute_url
from mailer.forms import SearchForm
from mailer.markdown import render_markdown
from mailer.models import Question
from subscriptions.models import Category

ARCHIVE_PAGE_SIZE = 20


@require_safe
def question(request, pk):
    item = get_object_or_404(Question, pk=pk, is_published=True)
    siblings = Question.objects.filter(category=item.category, is_published=True)
    return render(
        request,
        "mailer/question.html",
        {
            "question": item,
            "category_label": Category(item.category).label,
            "question_html": render_markdown(item.question_md),
            "summary": archive_reads.question_summary(item),
            "share_url": absolute_url(reverse("mailer:question", args=[item.pk])),
            "answer_html": render_markdown(item.answer_md),
            "previous": siblings.filter(position__lt=item.position).order_by("-position").first(),
            "next": siblings.filter(position__gt=item.position).order_by("position").first(),
        },
    )


@require_safe
def archive(request, category):
    if category not in Category.values:
        raise Http404("No such category.")
    form = SearchForm(request.GET)
    # A query too long is refused with its reason, and stays in the box to be shortened.
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    questions = (
        archive_reads.archive_questions(category=category, query=query) if form.is_valid() else Question.objects.none()
    )
    page = Paginator(questions.only("id", "title", "position"), ARCHIVE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "mailer/archive.html",
        {
            "category": category,
            "category_label": Category(category).label,
            "page": page,
            "categories": Category.choices,
            "form": form,
            "query": query,
        },
        status=200 if form.is_valid() else 400,
    )
