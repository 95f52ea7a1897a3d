"""Money and access. Amounts are integers in minor units with an explicit currency."""

import re
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel, InlinePanel
from wagtail.models import Orderable

from base.db import update_row
from base.money import format_money


def new_public_id():
    return "ord_" + secrets.token_urlsafe(18)


PUBLIC_ID = re.compile(r"^ord_[A-Za-z0-9_-]{10,36}$")


def is_public_id(value):
    return isinstance(value, str) and bool(PUBLIC_ID.match(value))


def normalise_email(email):
    return (email or "").strip().lower()


CURRENCY_CHECK = Q(currency__regex=r"^[a-z]{3}$")


class AppendOnlyError(Exception):
    pass


class AppendOnly:
    """An audit trail's rows: written once, never changed, never deleted."""

    append_only = True  # base.db.update_row refuses them too

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError(f"{self._meta.verbose_name_plural} are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.verbose_name_plural} are append-only.")


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Payment processing"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        EXPIRED = "expired", "Abandoned (checkout expired)"
        NEEDS_REVIEW = "needs_review", "Needs review"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"
        DISPUTED = "disputed", "Disputed"

    public_id = models.CharField(max_length=40, unique=True, default=new_public_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    email = models.EmailField(help_text="Normalised buyer e-mail (guest or account).")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3)
    amount_subtotal = models.PositiveIntegerField(help_text="Snapshot of item prices at checkout.")
    amount_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="What Stripe charged."
    )
    amount_discount = models.PositiveIntegerField(default=0)
    amount_refunded = models.PositiveIntegerField(default=0)
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_session_url = models.URLField(max_length=1000, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    # Facts learned from Stripe. Each is set at most once; status is derived from them so the
    # final state does not depend on the order in which Stripe's events arrive.
    processing_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)
    # Bought as a bundle: one item per course, the bundle price allocated across them. The
    # title is a snapshot; the page may change or go without touching the order.
    bundle = models.ForeignKey(
        "courses.BundlePage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bundle_title = models.CharField(max_length=255, blank=True)
    # The buyer already had access to everything in the order when its payment arrived: no
    # second grant; the payment is refunded automatically and the buyer told why, once.
    already_owned_at = models.DateTimeField(null=True, blank=True)
    auto_refund_requested_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Never stored: what one settlement in commerce.payments.fulfilment changed, for the
    # receipt and the buyer's e-mails once it commits (unset until a settlement sets them).
    _newly_paid: bool
    _refunded_now: int
    _access_changes: set[str]
    gift_email: str | None  # a gift's recipient, read with the locked order (fulfilment)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("reconcile_order", "Can run reconciliation with Stripe"),
            ("refund_order", "Can refund orders"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["email"]),
            # The admin's order list, newest first, reads one page of this index.
            models.Index(fields=["-created_at"], name="order_newest_first"),
        ]
        constraints = [
            models.CheckConstraint(condition=CURRENCY_CHECK, name="order_currency_iso"),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=models.F("amount_subtotal")),
                name="order_refund_not_above_subtotal",
            ),
        ]

    def __str__(self):
        return self.public_id

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        self._remember(kwargs.get("update_fields"))

    @classmethod
    def from_db(cls, db, field_names, values):
        """Remember what was read, so a settlement writes only what it changed."""
        order = super().from_db(db, field_names, values)
        order._loaded_values = dict(zip(field_names, values, strict=True))
        return order

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        self._remember(fields)

    def _remember(self, names=None):
        """What the database now holds: after a save or a refresh, the fields it covered."""
        deferred = self.get_deferred_fields()
        fields = [
            f
            for f in self._meta.concrete_fields
            if names is None or f.name in names or f.attname in names
        ]
        loaded = self.__dict__.setdefault("_loaded_values", {})
        loaded.update(
            {f.attname: getattr(self, f.attname) for f in fields if f.attname not in deferred}
        )

    def save_changes(self) -> None:
        """Write what changed since the order was read, in one statement (base.db.update_row),
        and nothing when nothing did; an order not read whole is saved whole."""
        changed = self.changed_fields()
        if changed is None:
            self.save()
        elif changed:
            update_row(self, changed)
            self._remember(changed)

    def changed_fields(self) -> list[str] | None:
        """The fields changed since the order was read; None when that is not known (a new
        order, one read in part): save() decides. Compared by value, which holds because
        every field of an order is an immutable value (a JSON field would need a copy)."""
        loaded = getattr(self, "_loaded_values", None)
        if loaded is None or self._state.adding or len(loaded) != len(self._meta.concrete_fields):
            return None
        changed = [name for name, value in loaded.items() if getattr(self, name) != value]
        return [*changed, "updated_at"] if changed else []

    @property
    def is_paid(self):
        return self.paid_at is not None

    @property
    def outcome(self):
        """The status as an owner reads it: an open checkout is told apart from one the buyer
        walked away from before the expiry job has marked it."""
        if self.status == self.Status.PENDING:
            if self.expires_at and self.expires_at <= timezone.now():
                return "Abandoned (checkout not completed)"
            return "Checkout open"
        return self.get_status_display()

    # Money as a person reads it, for listings and exports (raw minor units stay beside).
    @property
    def subtotal_display(self):
        return format_money(self.amount_subtotal, self.currency)

    @property
    def total_display(self):
        return format_money(self.amount_total, self.currency)

    @property
    def refunded_display(self):
        return format_money(self.amount_refunded, self.currency)

    @property
    def course_titles(self):
        return ", ".join(item.title for item in self.items.all())

    @property
    def items_display(self):
        """Each item at the amount it sold for (a bundle's share), for exports."""
        return "; ".join(
            f"{item.title} {format_money(item.unit_amount, item.currency)}"
            for item in self.items.all()
        )

    @property
    def gift_recipient(self):
        gift = getattr(self, "gift", None) if self.pk else None
        return gift.recipient_email if gift else ""

    @property
    def description(self):
        """What was bought, as the buyer and the owner read it."""
        what = f"{self.bundle_title} (bundle)" if self.bundle_title else self.course_titles
        gift = getattr(self, "gift", None) if self.pk else None
        return f"{what}, a gift for {gift.recipient_email}" if gift else what


class Gift(models.Model):
    """An order bought for someone else. Its entitlements belong to the recipient's address
    (never the buyer); the recipient is told on ``deliver_on`` and claims with the link."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="gift")
    recipient_email = models.EmailField(help_text="Normalised recipient address.")
    recipient_name = models.CharField(max_length=100, blank=True)
    message = models.TextField(max_length=500, blank=True)
    deliver_on = models.DateField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["delivered_at", "deliver_on"])]

    def __str__(self):
        return f"gift for {self.recipient_email} ({self.order.public_id})"

    @property
    def claimed(self):
        """The recipient has attached the gift to an account (all the buyer is shown)."""
        return Entitlement.objects.filter(
            order_item__order_id=self.order_id, user__isnull=False
        ).exists()


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="items")
    course = models.ForeignKey("courses.CoursePage", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=255, help_text="Course title at checkout.")
    unit_amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)

    # Never stored: a guest's address is an account's that already has the course
    # (read with the items in fulfilment).
    owned_by_account: bool

    class Meta:
        constraints = [
            models.CheckConstraint(condition=CURRENCY_CHECK, name="orderitem_currency_iso"),
            models.UniqueConstraint(fields=["order", "course"], name="orderitem_once_per_order"),
        ]

    def __str__(self):
        return f"{self.title} ({self.order.public_id})"


class OrderEvent(AppendOnly, models.Model):
    """Append-only audit trail of everything that happened to an order."""

    class Source(models.TextChoices):
        CHECKOUT = "checkout", "Checkout"
        WEBHOOK = "webhook", "Webhook"
        SUCCESS_PAGE = "success_page", "Success page"
        RECONCILIATION = "reconciliation", "Reconciliation"
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Management command"
        SYSTEM = "system", "System"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    source = models.CharField(max_length=20, choices=Source.choices)
    stripe_event_id = models.CharField(max_length=255, blank=True)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    message = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.order_id} {self.from_status}→{self.to_status}: {self.message[:60]}"


class Refund(models.Model):
    """One row per Stripe refund id, so each refund is counted once."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=30)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.stripe_refund_id} ({format_money(self.amount, self.currency)})"


class RefundRequest(models.Model):
    """A refund someone asked Stripe for. The order changes only when Stripe confirms it
    (``charge.refunded`` or reconciliation), like every refund. The idempotency key is
    unique, so a double click or two admins at once make one request and one refund."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        SENT = "sent", "Accepted by Stripe"
        FAILED = "failed", "Refused or failed"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refund_requests")
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refundrequest_positive"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="refundrequest_currency_iso"),
        ]

    def __str__(self):
        return f"{format_money(self.amount, self.currency)} for {self.order_id} ({self.status})"


class Notification(models.Model):
    """An e-mail a buyer must get about their money or access, sent once: the key is unique
    (one per order and state, or per refunded total), the row is locked while sending."""

    class Kind(models.TextChoices):
        PROCESSING = "processing", "Payment processing"
        FAILED = "failed", "Payment failed"
        REFUNDED = "refunded", "Refunded"
        SUSPENDED = "suspended", "Access suspended (dispute)"
        RESTORED = "restored", "Access restored"
        REVOKED = "revoked", "Access revoked"
        ALREADY_OWNED = "already_owned", "Already owned: payment refunded"
        GIFT = "gift", "Gift delivered to its recipient"
        WELCOME = "welcome", "Membership started"
        PAYMENT_FAILED = "payment_failed", "Membership payment failed"
        CANCELLING = "cancelling", "Membership cancellation confirmed"
        MEMBERSHIP_ENDED = "membership_ended", "Membership access ended"
        LESSONS_OPENED = "lessons_opened", "Lessons opened (drip release)"

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    email = models.EmailField()
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    entitlement = models.ForeignKey(
        "Entitlement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    membership = models.ForeignKey(
        "Membership", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["sent_at", "created_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.email}"


class Dispute(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="disputes")
    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    amount = models.PositiveIntegerField()
    reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.stripe_dispute_id} ({self.status})"


class StripeEvent(models.Model):
    """The webhook ledger: one row per Stripe event id, inserted before processing."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Dead (gave up)"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField(default=False)
    api_version = models.CharField(max_length=50, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="stripe_events"
    )
    stripe_created = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        permissions = [("replay_stripeevent", "Can replay Stripe events")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.event_id} {self.type} ({self.status})"


class EntitlementQuerySet(models.QuerySet):
    def active(self, now=None):
        """The one rule for "opens the course now": status active and not expired."""
        return self.filter(status=Entitlement.Status.ACTIVE).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now())
        )

    def claimable(self):
        """Everything but a gift still waiting for its delivery date: its recipient must not
        find it early, by logging in or by asking for their purchases."""
        return self.exclude(
            Q(order_item__order__gift__isnull=False)
            & Q(order_item__order__gift__delivered_at__isnull=True)
        )


class Entitlement(models.Model):
    """The right to open a course. Never deleted: revocation is a status with a reason."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        REVOKED = "revoked", "Revoked"

    class Source(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        ADMIN = "admin", "Admin grant"
        ENROLMENT = "enrolment", "Free enrolment"

    course = models.ForeignKey("courses.CoursePage", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entitlements",
    )
    email = models.EmailField(help_text="Normalised e-mail; the owner until claimed by a user.")
    source = models.CharField(max_length=20, choices=Source.choices)
    order_item = models.OneToOneField(
        OrderItem, null=True, blank=True, on_delete=models.PROTECT, related_name="entitlement"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    reason = models.TextField(blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an account claimed this guest or gift purchase."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EntitlementQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "course"],
                condition=Q(status="active") & Q(user__isnull=False),
                name="one_active_entitlement_per_user_course",
            ),
            models.UniqueConstraint(
                fields=["email", "course"],
                condition=Q(status="active") & Q(user__isnull=True),
                name="one_active_entitlement_per_guest_course",
            ),
            models.CheckConstraint(
                condition=~Q(source="purchase") | Q(order_item__isnull=False),
                name="purchase_entitlement_has_order_item",
            ),
        ]
        indexes = [models.Index(fields=["email", "status"])]
        permissions = [("grant_entitlement", "Can grant and revoke access")]

    def __str__(self):
        return f"{self.user or self.email} → {self.course_id} ({self.status})"


class ClaimToken(models.Model):
    """A single-use link, e-mailed to a guest buyer, that proves control of the address."""

    email = models.EmailField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    def __str__(self):
        return f"claim link for {self.email}"


class ReconciliationRun(models.Model):
    """One pass of reconciliation with Stripe: what it looked at and what it fixed."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField()
    dry_run = models.BooleanField(default=False)
    ok = models.BooleanField(default=False)
    summary = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    triggered_by = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'failed'})"

    FIGURES = [
        ("sessions_checked", "Checkout sessions checked"),
        ("orders_fixed", "Orders brought up to date"),
        ("events_seen", "Stripe events seen"),
        ("events_recovered", "Missed events recovered"),
        ("memberships_checked", "Memberships checked"),
        ("memberships_fixed", "Memberships brought up to date"),
    ]

    def figures(self):
        """The summary as labelled figures, in a fixed order."""
        summary = self.summary or {}
        return [(label, summary.get(key, 0)) for key, label in self.FIGURES]

    @property
    def figures_text(self):
        return ", ".join(f"{label}: {value}" for label, value in self.figures())


class DownloadEvent(models.Model):
    """Who fetched which protected file, when, from where. Written before the link is issued."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resource = models.ForeignKey(
        "courses.LessonResource", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=300)
    lesson = models.ForeignKey(
        "courses.LessonPage", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    course = models.ForeignKey(
        "courses.CoursePage", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.user_id or 'anonymous'} downloaded {self.file_name}"

    @property
    def title(self):
        """The file as the editor named it; the stored name once the file is gone."""
        return self.resource.title if self.resource_id and self.resource else self.file_name


class LessonDocument(models.Model):
    """A document that some revision of a lesson used. Rows stay when a later revision drops
    the document: a file once attached to a paid lesson stays as private as that lesson."""

    lesson = models.ForeignKey("courses.LessonPage", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey("wagtaildocs.Document", on_delete=models.CASCADE, related_name="+")
    first_seen_at = models.DateTimeField(default=timezone.now)

    # Wagtail's own usage listing already shows where a document is used today.
    wagtail_reference_index_ignore = True

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "lesson"], name="lesson_document_once")
        ]

    def __str__(self):
        return f"document {self.document_id} in lesson {self.lesson_id}"


# --- memberships (Stripe Billing) ------------------------------------------------------------


def new_membership_id():
    return "mem_" + secrets.token_urlsafe(18)


class MembershipPlan(ClusterableModel):
    """What a membership opens and what it costs per interval. Retiring a plan stops new
    sign-ups; its members keep their access for as long as Stripe bills them."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    all_courses = models.BooleanField(
        default=False, help_text="Opens every course, including courses published later."
    )
    active = models.BooleanField(default=True, help_text="Untick to stop selling this plan.")
    created_at = models.DateTimeField(default=timezone.now)

    panels = [
        FieldPanel("name"),
        FieldPanel("description"),
        FieldPanel("active"),
        FieldPanel("all_courses"),
        InlinePanel("plan_courses", heading="Courses (unless all courses)", label="Course"),
        InlinePanel("prices", heading="Prices", label="Price", min_num=1, max_num=2),
    ]

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def prices_text(self):
        return ", ".join(str(price) for price in self.prices.all())

    def covers(self, course_id):
        return self.all_courses or self.plan_courses.filter(course_id=course_id).exists()

    def price_for(self, interval):
        return self.prices.filter(interval=interval).first()


class PlanCourse(Orderable):
    plan = ParentalKey(MembershipPlan, on_delete=models.CASCADE, related_name="plan_courses")
    course = models.ForeignKey("courses.CoursePage", on_delete=models.CASCADE, related_name="+")

    panels = [FieldPanel("course")]

    class Meta(Orderable.Meta):
        constraints = [models.UniqueConstraint(fields=["plan", "course"], name="plan_course_once")]

    def __str__(self):
        return f"{self.course} in {self.plan}"


class PlanPrice(Orderable):
    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    plan = ParentalKey(MembershipPlan, on_delete=models.CASCADE, related_name="prices")
    interval = models.CharField(max_length=5, choices=Interval.choices)
    amount = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text="Per interval, in minor units (cents)."
    )
    currency = models.CharField(
        max_length=3,
        default="usd",
        validators=[RegexValidator(r"^[a-z]{3}$", "Use a lower-case ISO 4217 code.")],
    )
    trial_days = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(730)], help_text="Free trial; 0 for none."
    )
    # The Stripe Price made for exactly this amount, currency and interval (made once, reused;
    # a new one when the amount changes, since Stripe prices cannot change).
    stripe_price_id = models.CharField(max_length=255, blank=True, editable=False)
    stripe_price_for = models.CharField(max_length=100, blank=True, editable=False)

    panels = [
        FieldPanel("interval"),
        FieldPanel("amount"),
        FieldPanel("currency"),
        FieldPanel("trial_days"),
    ]

    class Meta(Orderable.Meta):
        constraints = [
            models.UniqueConstraint(fields=["plan", "interval"], name="plan_price_per_interval"),
            models.CheckConstraint(condition=CURRENCY_CHECK, name="planprice_currency_iso"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="planprice_positive"),
        ]

    def __str__(self):
        return f"{format_money(self.amount, self.currency)} {self.get_interval_display().lower()}"

    @property
    def signature(self):
        return f"{self.amount}-{self.currency}-{self.interval}"


class Membership(models.Model):
    """A learner's subscription to a plan. Stripe's facts are stored as Stripe states them;
    ``access_until`` is derived from them at every change, so the access check is one indexed
    comparison and a grace period or the end of a paid period needs no job to take effect."""

    class Status(models.TextChoices):
        CHECKOUT = "checkout", "Checkout open"
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Never paid"
        TRIALING = "trialing", "Trial"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Payment overdue"
        UNPAID = "unpaid", "Unpaid"
        CANCELED = "canceled", "Ended"
        PAUSED = "paused", "Paused"
        ABANDONED = "abandoned", "Checkout abandoned"

    LIVE = ("trialing", "active", "past_due", "unpaid", "paused", "incomplete")
    ENDED = ("canceled", "incomplete_expired", "abandoned")

    public_id = models.CharField(
        max_length=40, unique=True, default=new_membership_id, editable=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    plan = models.ForeignKey(MembershipPlan, on_delete=models.PROTECT, related_name="members")
    interval = models.CharField(max_length=5, choices=PlanPrice.Interval.choices)
    amount = models.PositiveIntegerField(help_text="Price per interval at sign-up.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CHECKOUT)
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_session_url = models.URLField(max_length=1000, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    trial_end = models.DateTimeField(null=True, blank=True)
    past_due_since = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    access_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the membership first opened the courses."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "access_until"])]
        constraints = [
            models.CheckConstraint(condition=CURRENCY_CHECK, name="membership_currency_iso"),
            # One open checkout per learner and plan: a double click opens one session.
            models.UniqueConstraint(
                fields=["user", "plan"],
                condition=Q(status="checkout"),
                name="one_open_membership_checkout",
            ),
        ]

    def __str__(self):
        return f"{self.public_id} ({self.plan}, {self.status})"

    @property
    def is_live(self):
        return self.status in self.LIVE

    def opens_now(self, now=None):
        return bool(self.access_until and self.access_until > (now or timezone.now()))

    @property
    def price_display(self):
        return f"{format_money(self.amount, self.currency)} per {self.interval}"


class MembershipEvent(AppendOnly, models.Model):
    """Append-only trail of everything that happened to a membership."""

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="events")
    source = models.CharField(max_length=20, choices=OrderEvent.Source.choices)
    stripe_event_id = models.CharField(max_length=255, blank=True)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.membership_id} {self.from_status}→{self.to_status}: {self.message[:60]}"


class Invoice(models.Model):
    """One row per Stripe invoice of a membership: what was billed, paid or failed."""

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="invoices")
    stripe_invoice_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=20)
    amount_due = models.PositiveIntegerField(default=0)
    amount_paid = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3)
    period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.stripe_invoice_id} ({self.status})"

    @property
    def amount_display(self):
        return format_money(self.amount_paid or self.amount_due, self.currency)
