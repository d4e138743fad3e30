from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import get_language
from django.views.decorators.http import require_safe

from mailer import archive as archive_reads
from mailer.emails import absolute_url
from mailer.forms import SearchForm
from mailer.models import Question
from mailer.selectors import question_text
from subscriptions import tracks

ARCHIVE_PAGE_SIZE = 20


@require_safe
def question(request, pk):
    item = get_object_or_404(Question, pk=pk, is_published=True)
    siblings = Question.objects.filter(category=item.category, is_published=True)
    language = get_language()
    previous = siblings.filter(position__lt=item.position).order_by("-position").first()
    following = siblings.filter(position__gt=item.position).order_by("position").first()
    return render(
        request,
        "mailer/question.html",
        {
            "question": item,
            "text": question_text(item, language),
            "category_label": tracks.label(item.category),
            "summary": archive_reads.question_summary(item, language=language),
            "share_url": absolute_url(reverse("mailer:question", args=[item.pk])),
            "previous": previous and question_text(previous, language),
            "previous_pk": previous and previous.pk,
            "next": following and question_text(following, language),
            "next_pk": following and following.pk,
        },
    )


@require_safe
def archive(request, category):
    if tracks.get(category) is None:
        raise Http404("No such category.")
    form = SearchForm(request.GET)
    # A query too long is refused with its reason, and stays in the box to be shortened.
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    questions = (
        archive_reads.archive_questions(category=category, query=query) if form.is_valid() else Question.objects.none()
    )
    page = Paginator(questions.only("id", "title", "title_en", "position"), ARCHIVE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    language = get_language()
    titles = [(item.pk, question_text(item, language)) for item in page.object_list]
    return render(
        request,
        "mailer/archive.html",
        {
            "category": category,
            "category_label": tracks.label(category),
            "page": page,
            "titles": titles,
            # The other language that titles without this page's language are shown in, if any.
            "fell_back_to": next((text.language for _pk, text in titles if text.fell_back), None),
            "categories": tracks.choices(retired=True),
            "form": form,
            "query": query,
        },
        status=200 if form.is_valid() else 400,
    )
