"""/metrics for Prometheus: the money path's health, read from the database at each scrape, so
every web node reports the same numbers however many processes serve it."""

import hmac
import time

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from commerce.models import Membership, ReconciliationRun, StripeEvent


def task_queue_depth():
    """Tasks waiting in django-q2's broker (Redis or the ORM), or -1 if it cannot be asked."""
    try:
        from django_q.brokers import get_broker

        return int(get_broker().queue_size() or 0)
    except Exception:  # noqa: BLE001 - a metric must not fail the scrape
        return -1


class MoneyCollector:
    def collect(self):
        events = GaugeMetricFamily(
            "coursesite_stripe_events",
            "Stripe events in the webhook ledger by type and outcome.",
            labels=["type", "status"],
        )
        for row in StripeEvent.objects.values("type", "status").annotate(n=Count("pk")):
            events.add_metric([row["type"], row["status"]], row["n"])
        yield events
        backlog = StripeEvent.objects.filter(
            status__in=[StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED]
        ).count()
        yield GaugeMetricFamily(
            "coursesite_ledger_backlog",
            "Ledger events received or failed and not yet processed.",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "coursesite_ledger_dead",
            "Ledger events given up on after every retry (need a replay).",
            value=StripeEvent.objects.filter(status=StripeEvent.Status.DEAD).count(),
        )
        yield GaugeMetricFamily(
            "coursesite_task_queue_depth", "Tasks waiting for a worker.", value=task_queue_depth()
        )
        last = (
            ReconciliationRun.objects.filter(dry_run=False, ok=True)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        yield GaugeMetricFamily(
            "coursesite_reconciliation_age_seconds",
            "Seconds since the last successful reconciliation (-1: never).",
            value=time.time() - last.timestamp() if last else -1,
        )
        members = GaugeMetricFamily(
            "coursesite_memberships", "Memberships by status.", labels=["status"]
        )
        for row in Membership.objects.values("status").annotate(n=Count("pk")):
            members.add_metric([row["status"]], row["n"])
        yield members


@never_cache
@require_GET
def metrics(request):
    """Off (404) unless METRICS_TOKEN is set; then only with ``Authorization: Bearer <it>``."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = HttpResponse(
            "A bearer token is required.", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    registry.register(MoneyCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
