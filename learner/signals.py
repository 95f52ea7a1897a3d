"""Signal receivers, connected in LearnerConfig.ready()."""

from commerce.models import Entitlement
from commerce.payments.fulfilment import DISPUTE_LOST, REFUNDED_IN_FULL


def entitlement_saved(sender, instance, raw=False, **kwargs):
    """Money back in full voids the certificate, in the transaction that revokes the access."""
    if raw or instance.status != Entitlement.Status.REVOKED:
        return
    if instance.reason in (REFUNDED_IN_FULL, DISPUTE_LOST):
        from learner.certificates import void_for_returned_money

        void_for_returned_money(instance)
