"""Queueing django-q2 tasks through one broker per process."""

from functools import cache

from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task


@cache
def broker() -> Broker:
    """django-q2 builds a broker, and with Redis a new connection, for every task it queues;
    this one is kept (Redis connection pools and the ORM broker are both thread-safe)."""
    return get_broker()


def enqueue(func: str, *args, **kwargs) -> str:
    """``async_task`` through the kept broker; returns the task id."""
    return async_task(func, *args, broker=broker(), **kwargs)
