import logging
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from base import ratelimit
from commerce.access import delivery, has_course_access, opened_for
from commerce.access.gate import private, refusal, why_closed
from commerce.forms import GiftForm, GuestCheckoutForm
from commerce.models import Gift, Order, OrderEvent, is_public_id
from commerce.payments import checkout as checkout_flow
from commerce.payments import fulfilment, gateway, ledger
from courses.models import BundlePage, CoursePage, LessonResource

log = logging.getLogger(__name__)

SESSION_ORDERS = "commerce_orders"
SESSION_ID_RE = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")


def see_other(url):
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def remember_order(request, order):
    orders = [o for o in request.session.get(SESSION_ORDERS, []) if o != order.public_id]
    request.session[SESSION_ORDERS] = (orders + [order.public_id])[-20:]


def owns(request, order):
    if request.user.is_authenticated and order.user_id == request.user.pk:
        return True
    return order.public_id in request.session.get(SESSION_ORDERS, [])


def course_start_url(course):
    first = course.first_lesson()
    return first.url if first else course.url


def product_on_sale(page_id):
    """The live course or bundle a checkout names, or 404."""
    from wagtail.models import Page

    page = Page.objects.live().public().filter(pk=page_id).specific().first()
    if not isinstance(page, CoursePage | BundlePage):
        raise Http404("No such course.")
    return page


def owned_courses(user, product):
    """The courses of this product the logged-in learner already has."""
    if not user.is_authenticated:
        return []
    courses = product.courses() if isinstance(product, BundlePage) else [product]
    return opened_for(user, courses)


def checkout_refused(request, product, status, **context):
    return render(
        request, "commerce/checkout_error.html", {"course": product, **context}, status=status
    )


@require_POST
def checkout(request, course_page_id):
    """Buy a course or a bundle, for oneself or (``gift=1``) for someone else."""
    product = product_on_sale(course_page_id)
    user = request.user
    as_gift = request.POST.get("gift") == "1"
    if product.is_free:
        if as_gift:
            return checkout_refused(request, product, 400, free_gift=True)
        if not user.is_authenticated:
            return redirect_to_login(product.url)
        checkout_flow.enrol_free(product, user)
        messages.success(request, f"You are enrolled in {product.title}.")
        return see_other(course_start_url(product))
    courses = product.courses() if isinstance(product, BundlePage) else [product]
    owned = owned_courses(user, product)
    if not as_gift and courses and len(owned) == len(courses):
        if isinstance(product, BundlePage):
            messages.info(request, "You already have every course in this bundle.")
            return see_other(product.url)
        messages.info(request, "You already have this course.")
        return see_other(course_start_url(product))

    gift = None
    if as_gift:
        gift_form = GiftForm(request.POST)
        if not gift_form.is_valid():
            return checkout_refused(request, product, 400, form=gift_form, gift=True)
        data = gift_form.cleaned_data
        if owned and len(owned) == len(courses) and own_address(user, data["recipient_email"]):
            gift_form.add_error(
                "recipient_email",
                "That is your own address, and you already have "
                + ("every course in this bundle." if len(courses) > 1 else "this course."),
            )
            return checkout_refused(request, product, 400, form=gift_form, gift=True)
        gift = checkout_flow.GiftDetails(
            recipient_email=data["recipient_email"],
            recipient_name=data["recipient_name"],
            message=data["gift_message"],
            deliver_on=data["deliver_on"],
        )

    if user.is_authenticated:
        email = user.email
    else:
        # A guest gets the same answer for every address: nothing here may depend on what
        # someone else bought. A buyer who already owned the course is refunded after payment.
        form = GuestCheckoutForm(request.POST)
        if not form.is_valid():
            return checkout_refused(request, product, 400, form=form)
        email = form.cleaned_data["email"]
        if ratelimit.hit(f"checkout:ip:{ratelimit.client_ip(request)}", settings.CHECKOUT_RATE):
            return checkout_refused(request, product, 429, limited=True)
    try:
        order = checkout_flow.start_checkout(
            product,
            user=user,
            email=email,
            session_orders=request.session.get(SESSION_ORDERS, []),
            gift=gift,
        )
    except checkout_flow.NotForSale as exc:
        return checkout_refused(request, product, 409, not_for_sale=str(exc))
    except gateway.GatewayError as exc:
        log.error("checkout for page %s failed: %s", product.pk, exc)
        return checkout_refused(request, product, 503, unavailable=True)
    remember_order(request, order)
    return see_other(order.stripe_session_url)


def own_address(user, email):
    from allauth.account.models import EmailAddress

    email = email.strip().lower()
    if not user.is_authenticated:
        return False
    return (user.email or "").lower() == email or EmailAddress.objects.filter(
        user=user, email__iexact=email
    ).exists()


@never_cache
@require_GET
def success(request):
    session_id = request.GET.get("session_id", "")
    if not SESSION_ID_RE.match(session_id):
        return render(request, "commerce/checkout_result.html", {"state": "invalid"}, status=400)
    order = Order.objects.filter(stripe_session_id=session_id).first()
    if order is None or not owns(request, order):
        raise Http404("No such order.")
    try:
        session = gateway.retrieve_checkout_session(session_id)
        order = fulfilment.fulfil_checkout_session(session, source=OrderEvent.Source.SUCCESS_PAGE)
    except gateway.GatewayError as exc:
        log.warning("success page for order %s: %s; showing the stored state", order.public_id, exc)
    except fulfilment.Ignored as reason:
        log.warning("success page for order %s ignored the session: %s", order.public_id, reason)
    order.refresh_from_db()
    return render(request, "commerce/checkout_result.html", result_context(request, order))


def result_context(request, order):
    items = list(order.items.select_related("course"))
    course = items[0].course if items else None
    gift = Gift.objects.filter(order=order).first()
    state = {
        Order.Status.PAID: "paid",
        Order.Status.PARTIALLY_REFUNDED: "paid",
        Order.Status.PROCESSING: "processing",
        Order.Status.PENDING: "pending",
        Order.Status.FAILED: "failed",
        Order.Status.EXPIRED: "failed",
    }.get(order.status, "attention")
    can_open = (
        bool(course)
        and gift is None
        and request.user.is_authenticated
        and has_course_access(request.user, course)
    )
    return {
        "order": order,
        "course": course,
        "items": items,
        "gift": gift,
        "retry_page": order.bundle if order.bundle_id and order.bundle.live else course,
        "state": state,
        "can_open": can_open,
        "start_url": course_start_url(course) if course and can_open else "",
    }


@never_cache
@require_GET
def cancel(request):
    ref = request.GET.get("order", "")
    order = Order.objects.filter(public_id=ref).first() if is_public_id(ref) else None
    if order is not None and not owns(request, order):
        order = None
    item = order.items.select_related("course").first() if order else None
    return render(
        request,
        "commerce/checkout_cancel.html",
        {"order": order, "course": item.course if item else None},
    )


@never_cache
@require_GET
def order_status(request, public_id):
    if not is_public_id(public_id):
        raise Http404("No such order.")
    order = get_object_or_404(Order, public_id=public_id)
    if not owns(request, order):
        raise Http404("No such order.")
    context = result_context(request, order)
    return JsonResponse(
        {
            "order": order.public_id,
            "status": order.status,
            "state": context["state"],
            "paid": order.is_paid,
            "access": context["can_open"],
            "start_url": context["start_url"],
        }
    )


@csrf_exempt
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request):
    """Stripe's endpoint: 400 for anything unsigned, 500 so Stripe retries a failure."""
    payload = request.body
    try:
        event = ledger.verify(payload, request.headers.get("Stripe-Signature"))
    except ledger.InvalidEvent as exc:
        log.warning("stripe webhook rejected: %s", exc)
        return JsonResponse({"error": str(exc)}, status=400)
    try:
        result = ledger.process(event)
    except Exception:  # recorded on the ledger; Stripe retries on non-2xx
        log.exception("stripe event %s could not be processed", event["id"])
        return JsonResponse({"error": "processing failed; it will be retried"}, status=500)
    return JsonResponse({"received": True, "status": result})


@never_cache
@require_GET
def download(request, resource_id):
    """Check access, write the audit row, then hand out a link that expires within minutes."""
    resource = (
        LessonResource.objects.select_related("lesson")
        .filter(pk=resource_id, lesson__live=True)
        .first()
    )
    if resource is None:
        raise Http404("No such file.")
    lesson = resource.lesson
    course = lesson.course()
    closed = why_closed(request, lesson, course)
    if closed:
        return refusal(request, lesson, course, closed)
    who = (
        f"user:{request.user.pk}"
        if request.user.is_authenticated
        else (f"ip:{ratelimit.client_ip(request)}")
    )
    if ratelimit.hit(f"download:{who}", settings.DOWNLOAD_RATE):
        return private(
            render(request, "commerce/download_limited.html", {"lesson": lesson}, status=429)
        )
    delivery.record(request, resource, lesson, course)
    return private(HttpResponseRedirect(delivery.signed_url(resource)))


@never_cache
@require_GET
def download_local(request, token):
    """Local storage only: the signed link the download view issued, served by Django."""
    try:
        resource_id = delivery.read_local_token(token)
    except signing.SignatureExpired:
        return private(
            HttpResponse(
                "This download link has expired. Go back to the lesson and download again.",
                status=410,
                content_type="text/plain",
            )
        )
    except signing.BadSignature:
        return private(
            HttpResponse("This download link is not valid.", status=403, content_type="text/plain")
        )
    resource = LessonResource.objects.filter(pk=resource_id).first()
    if resource is None or delivery.is_remote(resource.file.storage):
        raise Http404("No such file.")
    response = FileResponse(
        resource.file.open("rb"), as_attachment=True, filename=resource.filename
    )
    return private(response)
