import logging

from django_q.tasks import async_task

from commerce.access.claims import make_claim_url
from commerce.mail import emails

log = logging.getLogger(__name__)


def enqueue_claim_email(email):
    async_task("learner.tasks.send_claim_email", email, task_name="claim-email")


def send_claim_email(email, base_url=None):
    """The link is built on SITE_URL (``base_url`` is accepted from tasks queued by older code
    and ignored: a request's Host header never reaches an e-mail)."""
    url = make_claim_url(email)
    emails.send(
        to=email,
        subject="Your course purchases",
        template="learner/email/claim",
        context={"email": email, "claim_url": url},
    )
    log.info("claim link sent")
