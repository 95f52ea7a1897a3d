"""django-q2 task entry points, by stable dotted path (queued tasks and schedules name them).
Thin: the work lives in the modules named for it. Each is idempotent."""


def send_receipt(order_id):
    from commerce.mail.receipts import send_receipt

    return send_receipt(order_id)


def refund_already_owned(order_id):
    from commerce.payments.refunds import refund_already_owned

    return refund_already_owned(order_id)


def deliver_gift(order_id):
    from commerce.access.gifts import deliver

    return deliver(order_id)


def send_notification(notification_id):
    from commerce.mail.notifications import send

    return send(notification_id)


# Scheduled jobs (see setup_schedules).


def expire_pending_orders_job():
    from commerce.payments.reconciliation import expire_pending_orders

    return expire_pending_orders()


def reconcile_job():
    from commerce.payments.reconciliation import reconcile

    return reconcile(triggered_by="schedule").summary


def retry_failed_events_job():
    from commerce.payments.reconciliation import retry_failed_events

    return retry_failed_events()


def send_missing_receipts_job():
    from commerce.mail.receipts import send_missing_receipts

    return send_missing_receipts()


def deliver_gifts_job():
    from commerce.access.gifts import deliver_due

    return deliver_due()


def announce_opened_lessons_job():
    from commerce.access.release import announce_opened

    return announce_opened()
