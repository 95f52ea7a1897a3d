import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from base import ratelimit
from commerce.access import claims, gifts, release
from commerce.access.gate import private, refusal, why_closed
from commerce.models import Gift, Order, is_public_id
from courses.models import LessonPage
from learner import certificates, library, progress, quizzes, video
from learner.accounts import CLAIM_PROVEN_EMAIL
from learner.forms import CertificateNameForm, FindPurchasesForm
from learner.models import Certificate
from learner.tasks import enqueue_claim_email

log = logging.getLogger(__name__)

# A player reports every 15 s while playing and on each pause: 600 an hour per learner is more
# than anyone watching sends, and few enough to stop a script hammering the table.
VIDEO_REPORT_RATE = "600/h"


@never_cache
@login_required
def my_courses(request):
    return render(request, "learner/my_courses.html", library.build(request.user))


@never_cache
@login_required
def order_detail(request, public_id):
    if not is_public_id(public_id):
        raise Http404("No such order.")
    order = get_object_or_404(
        Order.objects.select_related("gift").prefetch_related("items"),
        public_id=public_id,
        user=request.user,
    )
    return render(request, "learner/order_detail.html", {"order": order})


@require_POST
@login_required
def resend_gift(request, public_id):
    """The buyer sends the recipient's e-mail again (their own gifts only)."""
    if not is_public_id(public_id):
        raise Http404("No such order.")
    gift = get_object_or_404(
        Gift.objects.select_related("order"), order__public_id=public_id, order__user=request.user
    )
    try:
        gifts.resend(gift)
    except gifts.CannotResend as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"We have e-mailed {gift.recipient_email} again.")
    return redirect("order_detail", public_id=public_id)


def _lesson_action(request, lesson_id):
    """The live lesson an action names, its course, and why this request may not use it (None
    when it may: gate.why_closed); 404 when there is no such lesson."""
    lesson = LessonPage.objects.live().filter(pk=lesson_id).first()
    if lesson is None:
        raise Http404("No such lesson.")
    course = lesson.course()
    return lesson, course, why_closed(request, lesson, course)


@require_POST
@login_required
def complete_lesson(request, lesson_id):
    lesson, course, closed = _lesson_action(request, lesson_id)
    if closed:
        return refusal(request, lesson, course, closed)
    try:
        progress.mark_complete(request.user, lesson, course)
    except progress.QuizNotPassed as missing:
        messages.error(request, f"Pass “{missing.titles[0]}” to complete this lesson.")
        return redirect(lesson.url)
    following = course.lessons().filter(path__gt=lesson.path).specific().first()
    # Focus lands on this message on the page the learner is sent to, so it says where they are.
    done = f"“{lesson.title}” marked complete."
    if following is None:
        messages.success(request, done)
        return redirect(lesson.url)
    opens = release.not_open_until(request.user, following, course, request)
    if opens:  # the next lesson is not released yet: stay here and say when it opens
        when = date_format(timezone.localtime(opens), "j F Y")
        messages.success(request, f"{done} Next: {following.title}, which opens on {when}.")
        return redirect(lesson.url)
    messages.success(request, f"{done} Next: {following.title}.")
    return redirect(following.url)


@require_POST
@login_required
def submit_quiz(request, lesson_id, quiz_id):
    """Grade a quiz on the server and keep the attempt; the lesson then shows the result."""
    lesson, course, closed = _lesson_action(request, lesson_id)
    if closed:
        return refusal(request, lesson, course, closed)
    quiz = quizzes.find(lesson, str(quiz_id))
    if quiz is None:
        raise Http404("This lesson has no such quiz.")
    if ratelimit.hit(f"quiz:{request.user.pk}", settings.QUIZ_RATE):
        return _quiz_problem(request, lesson, "Too many attempts: wait a while and try again.", 429)
    try:
        attempt = quizzes.submit(request.user, lesson, course, quiz, request.POST)
    except quizzes.InvalidAnswers as exc:
        return _quiz_problem(request, lesson, str(exc), 400)
    except quizzes.AlreadySubmitted as exc:
        return _quiz_problem(request, lesson, str(exc), 409)
    verdict = "Passed" if attempt.passed else "Not passed yet"
    messages.success(request, f"{quiz.title}: {attempt.score} of {attempt.total} right. {verdict}.")
    return redirect(f"{lesson.url}#quiz-{quiz.id}")


@require_POST
@login_required
def video_progress(request, lesson_id):
    """The player's report (every 15 s while playing, on pause and on leaving): JSON back."""
    try:
        lesson, course, closed = _lesson_action(request, lesson_id)
    except Http404:
        return JsonResponse({"error": "No such lesson."}, status=404)
    if closed:
        reason, moment = closed
        message = (
            f"This lesson opens on {date_format(timezone.localtime(moment), 'j F Y')}."
            if moment
            else "You cannot open this lesson."
        )
        return JsonResponse({"error": message}, status=403)
    if ratelimit.hit(f"video:{request.user.pk}", VIDEO_REPORT_RATE):
        return JsonResponse({"error": "Too many reports."}, status=429)
    try:
        report = video.parse(lesson, request.POST)
        percent, completed = video.record(request.user, lesson, course, *report)
    except video.InvalidProgress as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"percent": percent, "completed": completed})


def _quiz_problem(request, lesson, message, status):
    return _problem(request, message, lesson.url, status, f"Back to “{lesson.title}”")


def _problem(request, message, back_url, status, back_label="Back to my courses"):
    return render(
        request,
        "learner/problem.html",
        {"message": message, "back_url": back_url, "back_label": back_label},
        status=status,
    )


def certificate(request, code):
    """Anyone holding the code may confirm it: the name, the course, the date — nothing else."""
    code = code.upper()
    if not certificates.CODE.match(code):
        raise Http404("No such certificate.")
    found = get_object_or_404(Certificate, code=code)
    response = render(request, "learner/certificate.html", {"certificate": found})
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
@login_required
def certificate_pdf(request, code):
    found = get_object_or_404(Certificate, code=code.upper(), user=request.user)
    if found.is_void:
        return render(request, "learner/certificate.html", {"certificate": found}, status=410)
    response = HttpResponse(certificates.pdf(found), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="certificate-{found.code}.pdf"'
    return private(response)


@require_POST
@login_required
def certificate_name(request, code):
    """The learner corrects the name printed on their certificate (not on a void one)."""
    found = get_object_or_404(Certificate, code=code.upper(), user=request.user)
    back = reverse("my_courses")
    if found.is_void:
        return _problem(request, "This certificate is void: its name stays.", back, 409)
    form = CertificateNameForm(request.POST)
    if not form.is_valid():
        return _problem(request, form.errors["name"][0], back, 400)
    found.name = form.cleaned_data["name"]
    found.save(update_fields=["name"])
    messages.success(
        request, f"Your certificate for {found.course_title} now reads “{found.name}”."
    )
    return redirect(back)


def owned_by_someone_else(email, user):
    """Another account proved this address. An unproven one does not count: anyone can type
    someone else's address into a sign-up form, and it must not lock the owner out."""
    from allauth.account.models import EmailAddress

    return (
        EmailAddress.objects.filter(email__iexact=email, verified=True).exclude(user=user).exists()
    )


@never_cache
def claim(request, token):
    """A guest's e-mailed link: log in or sign up, then confirm to attach the purchases."""
    try:
        claim_token = claims.read_claim_token(token)
    except claims.InvalidClaim as exc:
        if request.user.is_authenticated and claims.used_by(token) == request.user.pk:
            messages.info(request, "You have already claimed these purchases.")
            return redirect("my_courses")
        return render(
            request,
            "learner/claim.html",
            {"error": str(exc), "form": FindPurchasesForm()},
            status=400,
        )
    if not request.user.is_authenticated:
        # The link reached this address: an account signed up with it needs no second proof.
        request.session.cycle_key()  # a planted session id cannot carry the proof
        request.session[CLAIM_PROVEN_EMAIL] = claim_token.pk
        return render(
            request,
            "learner/claim.html",
            {"email": claim_token.email, "next": request.get_full_path()},
        )
    if owned_by_someone_else(claim_token.email, request.user):
        return render(
            request,
            "learner/claim.html",
            {
                "error": f"{claim_token.email} belongs to another account. Log out and log in "
                "with that address to see these purchases."
            },
            status=409,
        )
    if request.method == "POST":
        try:
            email = claims.redeem(token, request.user)
        except claims.InvalidClaim as exc:
            return render(request, "learner/claim.html", {"error": str(exc)}, status=400)
        from learner.accounts import prove_email

        prove_email(request.user, email)
        claims.attach_guest_purchases(request.user, email, proof="e-mailed link")
        courses = claims.courses_bought_with(request.user, email)
        if not courses:
            messages.info(request, f"Nothing bought with {email} is waiting to be claimed.")
            return redirect("my_courses")
        titles = ", ".join(course.title for course in courses)
        messages.success(request, f"{titles} {'is' if len(courses) == 1 else 'are'} yours.")
        if len(courses) == 1:
            first = courses[0].first_lesson()
            return redirect(first.url if first else courses[0].url)
        return redirect("my_courses")
    return render(request, "learner/claim.html", {"email": claim_token.email, "confirm": True})


@never_cache
def find_purchases(request):
    """Sends the claim link again. Answers the same whether or not purchases exist."""
    form = FindPurchasesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        ip = ratelimit.client_ip(request)
        rate = settings.FIND_PURCHASES_RATE
        if ratelimit.hit(f"find:ip:{ip}", rate) | ratelimit.hit(f"find:email:{email}", rate):
            return render(
                request, "learner/find_purchases.html", {"form": form, "limited": True}, status=429
            )
        if claims.guest_purchases_exist(email):
            enqueue_claim_email(email)
        return render(request, "learner/find_purchases.html", {"sent": True, "email": email})
    return render(
        request,
        "learner/find_purchases.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )
