"""Several machines' worth on one: two web nodes behind HAProxy, two django-q2 clusters on a
Redis broker, PostgreSQL, the Stripe emulator — every node on the production settings — and a
run that buys courses through the balancer while a web node, a worker and Redis are killed.

    python -m devtools.cluster [--purchases 300]      (make cluster)

Prints the counts and exits non-zero if any guarantee failed: every paid order has exactly one
active grant per course, every receipt was sent exactly once, no ledger event is left
unprocessed, a session from one node works on the other, and a schedule ran once although two
clusters watch it. Bounded: gives up after ``--time-limit`` seconds. Needs PostgreSQL on
127.0.0.1:5432, ``redis-server`` and ``haproxy`` (Debian packages) on the PATH. It stops only
the processes it started.
"""

import argparse
import concurrent.futures
import email
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECRET = "whsec_cluster_" + secrets.token_hex(8)
COURSES = 3


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


class Cluster:
    def __init__(self, purchases, time_limit):
        self.purchases = purchases
        self.deadline = time.monotonic() + time_limit
        self.work = Path(tempfile.mkdtemp(prefix="coursesite-cluster-"))
        self.db = f"cluster_{os.getpid()}_{secrets.token_hex(3)}"
        self.ports = {
            name: free_port() for name in ("balancer", "web1", "web2", "stripe", "redis", "stats")
        }
        self.base = f"http://127.0.0.1:{self.ports['balancer']}"
        self.procs = {}
        self.counts = Counter()
        self.lock = threading.Lock()
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="0",
            SECRET_KEY="cluster-" + secrets.token_urlsafe(40),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SITE_URL=self.base,
            CSRF_TRUSTED_ORIGINS=self.base,
            SECURE_SSL_REDIRECT="0",
            SESSION_COOKIE_SECURE="0",
            CSRF_COOKIE_SECURE="0",
            SECURE_HSTS_SECONDS="0",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{self.db}",
            REDIS_URL=f"redis://127.0.0.1:{self.ports['redis']}/0",
            STRIPE_SECRET_KEY="sk_test_cluster",
            STRIPE_WEBHOOK_SECRET=SECRET,
            STRIPE_API_BASE=f"http://127.0.0.1:{self.ports['stripe']}",
            STRIPE_ALLOW_TEST_SERVER="1",
            STATIC_ROOT=str(self.work / "static"),
            MEDIA_ROOT=str(self.work / "media"),
            PRIVATE_MEDIA_ROOT=str(self.work / "private"),
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(self.work / "mail"),
            CHECKOUT_RATE="1000000/h",
            Q_WORKERS="2",
            LOG_LEVEL="WARNING",
            PYTHONWARNINGS="ignore",
        )
        for key in ("DJANGO_SETTINGS_MODULE_OVERRIDE", "PYTEST_ADDOPTS"):
            self.env.pop(key, None)

    # --- processes --------------------------------------------------------------------------

    def manage(self, *args, check=True):
        result = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if check and result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result

    def shell(self, code):
        """Run Python in a fresh process on the cluster's settings; its last line of output."""
        out = self.manage("shell", "--no-imports", "-v", "0", "-c", code).stdout.strip()
        return out.splitlines()[-1] if out else ""

    def spawn(self, name, args, **kwargs):
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole, and only it
            **kwargs,
        )

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def start_redis(self):
        self.spawn(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.ports["redis"]),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        wait_port(self.ports["redis"])

    def start_web(self, name):
        self.spawn(
            name,
            [
                PY,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{self.ports[name]}",
                "--graceful-timeout",
                "5",
            ],
        )
        wait_http(f"http://127.0.0.1:{self.ports[name]}/healthz")

    def start_worker(self, name):
        self.spawn(name, [PY, "manage.py", "qcluster"])

    def start_balancer(self):
        config = self.work / "haproxy.cfg"
        config.write_text(
            f"""
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend site
    bind 127.0.0.1:{self.ports["balancer"]}
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 300ms fall 1 rise 2
    server web1 127.0.0.1:{self.ports["web1"]} check
    server web2 127.0.0.1:{self.ports["web2"]} check
"""
        )
        self.spawn("balancer", ["haproxy", "-db", "-f", str(config)])
        wait_http(f"{self.base}/healthz")

    def setup(self):
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", self.db], check=True)
        self.start_redis()  # the shared cache is Redis: it must answer before anything runs
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        seed = subprocess.run(
            [PY, "-m", "devtools.cluster", "--seed"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if seed.returncode:
            raise RuntimeError(f"seeding failed: {seed.stderr[-2000:]}")
        self.courses = [
            (int(pk), url) for pk, url in (item.split("=") for item in seed.stdout.split())
        ]
        self.spawn(
            "stripe",
            [
                PY,
                "-m",
                "devtools.stripe_emulator",
                "--port",
                str(self.ports["stripe"]),
                "--webhook-url",
                f"{self.base}/webhooks/stripe/",
                "--webhook-secret",
                SECRET,
            ],
        )
        wait_http(f"http://127.0.0.1:{self.ports['stripe']}/_control/state")
        self.start_web("web1")
        self.start_web("web2")
        self.start_balancer()
        self.start_worker("worker1")
        self.start_worker("worker2")

    def stop(self):
        for name in ("worker1", "worker2"):
            self.kill(name, signal.SIGINT)  # qcluster may hang on SIGTERM
        for name in ("balancer", "web1", "web2", "stripe", "redis"):
            self.kill(name, signal.SIGTERM)
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", self.db],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.work, ignore_errors=True)

    # --- the run ----------------------------------------------------------------------------

    def request(self, method, url, session, **kwargs):
        """What a browser does when a node goes away mid-request: try again."""
        for attempt in range(8):
            try:
                response = session.request(method, url, timeout=30, **kwargs)
                if response.status_code not in (502, 503, 504):
                    return response
                with self.lock:
                    self.counts[f"retried after {response.status_code}"] += 1
            except requests.RequestException:
                with self.lock:
                    self.counts["retried after a dropped connection"] += 1
            time.sleep(0.3 * (attempt + 1))
        raise RuntimeError(f"{method} {url} kept failing")

    def buy(self, i):
        rng = random.Random(i)
        session = requests.Session()
        course_id, url = rng.choice(self.courses)
        page = self.request("GET", f"{self.base}{url}", session)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = self.request(
            "POST",
            f"{self.base}/checkout/{course_id}/",
            session,
            data={"email": f"buyer{i}@example.com", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.base}{url}"},
            allow_redirects=False,
        )
        if response.status_code != 303:
            raise RuntimeError(f"checkout answered {response.status_code}: {response.text[:200]}")
        pay_url = response.headers["Location"]
        session_id = pay_url.rsplit("/", 1)[-1]
        self.pay(pay_url, session_id)
        with self.lock:
            self.counts["purchases"] += 1
        if rng.random() < 0.5:  # the buyer's browser races the webhook to the success page
            self.request("GET", f"{self.base}/checkout/success/?session_id={session_id}", session)
            with self.lock:
                self.counts["success pages"] += 1
        if rng.random() < 0.3:  # Stripe delivers the same events again, two at once
            try:
                self.redeliver(session_id)
            except requests.RequestException:  # the emulator was too busy to answer in time
                with self.lock:
                    self.counts["duplicate deliveries skipped"] += 1
        return session_id

    def pay(self, pay_url, session_id):
        """The buyer pays on Stripe's page; a lost answer is checked against Stripe's record."""
        for attempt in range(4):
            try:
                paid = requests.post(
                    pay_url, data={"action": "card"}, allow_redirects=False, timeout=30
                )
                if paid.status_code == 303:
                    return
            except requests.RequestException:
                with self.lock:
                    self.counts["payment answers lost"] += 1
            try:
                session = requests.get(
                    f"http://127.0.0.1:{self.ports['stripe']}/v1/checkout/sessions/{session_id}",
                    headers={"Authorization": "Bearer sk_test_cluster"},
                    timeout=30,
                ).json()
            except requests.RequestException:
                session = {}
            if session.get("status") == "complete":
                return
            time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"could not pay {session_id}")

    def redeliver(self, session_id):
        control = f"http://127.0.0.1:{self.ports['stripe']}/_control/redeliver"
        events = requests.get(
            f"http://127.0.0.1:{self.ports['stripe']}/v1/events",
            params={"limit": 100},
            headers={"Authorization": "Bearer sk_test_cluster"},
            timeout=30,
        ).json()["data"]
        mine = [e["id"] for e in events if e["data"]["object"].get("id") == session_id]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for event_id in mine:
                list(
                    pool.map(
                        lambda e: requests.post(control, data={"event": e}, timeout=30),
                        [event_id] * 2,
                    )
                )
                with self.lock:
                    self.counts["duplicate deliveries"] += 2

    def faults(self, progress):
        """At fixed points of the run: a web node dies, a worker dies, Redis restarts (each
        once, and all of them even if the purchases finish first)."""
        plan = [(0.25, "web"), (0.45, "worker"), (0.65, "redis")]
        while plan:
            share, fault = plan[0]
            if progress["done"] / self.purchases < share and not progress["finished"]:
                time.sleep(0.05)
                continue
            plan.pop(0)
            if fault == "web":
                self.kill("web1")
                self.counts["web node killed"] += 1
                time.sleep(2)
                self.start_web("web1")
            elif fault == "worker":
                self.kill("worker1")
                self.counts["worker killed"] += 1
                time.sleep(1)
                self.start_worker("worker1")
            else:
                self.kill("redis")
                self.counts["redis restarted"] += 1
                time.sleep(1)
                self.start_redis()

    def run(self):
        progress = {"done": 0, "finished": False}
        chaos = threading.Thread(target=self.faults, args=(progress,), daemon=True)
        chaos.start()
        failures = []
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(self.buy, i) for i in range(self.purchases)]
            for future in concurrent.futures.as_completed(futures):
                if time.monotonic() > self.deadline:
                    raise RuntimeError("the cluster run ran out of time")
                try:
                    future.result()
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    failures.append(repr(exc))
                progress["done"] += 1
        progress["finished"] = True
        chaos.join(timeout=120)
        self.counts["purchases that failed"] = len(failures)
        return failures

    def sessions_cross_nodes(self):
        """A learner logged in through web1 is logged in on web2."""
        node1 = f"http://127.0.0.1:{self.ports['web1']}"
        node2 = f"http://127.0.0.1:{self.ports['web2']}"
        session = requests.Session()
        page = session.get(f"{node1}/accounts/login/", timeout=20)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        session.post(
            f"{node1}/accounts/login/",
            data={
                "login": "learner@example.com",
                "password": "cluster-passphrase",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{node1}/accounts/login/"},
            timeout=20,
            allow_redirects=False,
        )
        other = session.get(f"{node2}/my-courses/", timeout=20, allow_redirects=False)
        return other.status_code == 200 and "My courses" in other.text

    def schedule_runs_once(self):
        """Both clusters' schedulers see a due schedule; one task is made from it."""
        name = "cluster: once per schedule"
        script = (
            "from django.utils import timezone; from django_q.models import Schedule; "
            f"Schedule.objects.create(name={name!r}, func='commerce.tasks.deliver_gifts_job', "
            "schedule_type=Schedule.MINUTES, minutes=60, repeats=-1, "
            "next_run=timezone.now())"
        )
        self.shell(script)
        count = 0
        deadline = time.monotonic() + 75  # django-q2's scheduler wakes about every 30 s
        while time.monotonic() < deadline:
            count = int(
                self.shell(
                    f"from django_q.models import Task; print(Task.objects.filter(group={name!r})"
                    ".count())"
                )
                or 0
            )
            if count:
                time.sleep(35)  # a second scheduler wake-up must not make a second task
                break
            time.sleep(2)
        return int(
            self.shell(
                f"from django_q.models import Task; print(Task.objects.filter(group={name!r})"
                ".count())"
            )
            or 0
        )

    def settle(self):
        """What the schedules do in production, now: recover lost webhooks, failed events,
        lost receipts; then wait for the workers to drain the queue."""
        before = self.shell(
            "from commerce.models import Order, StripeEvent; print(Order.objects.filter("
            "paid_at__isnull=False, receipt_sent_at__isnull=True, already_owned_at__isnull=True)"
            ".count(), StripeEvent.objects.exclude(status='processed').count())"
        ).split()
        self.counts["receipts owed before the sweep"] = int(before[0])
        self.counts["ledger events unprocessed before recovery"] = int(before[1])
        script = (
            "from commerce.payments import reconciliation; from commerce.mail import receipts; "
            "reconciliation.reconcile(since=None); reconciliation.retry_failed_events(); "
            "receipts.send_missing_receipts(older_than_minutes=0)"
        )
        self.shell(script)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = self.shell(
                "from commerce.models import Order; print(Order.objects.filter("
                "paid_at__isnull=False, receipt_sent_at__isnull=True, "
                "already_owned_at__isnull=True).count())"
            )
            if left == "0":
                return
            time.sleep(1)

    def check(self):
        out = self.shell(CHECKS)
        figures = dict(item.split("=") for item in out.split())
        # Per order, each distinct message (by Message-ID) and how often it went out. A worker
        # killed between the mail server taking a receipt and the commit sends it again on
        # retry: the same message (commerce.mail.emails.message_id), which is shown once.
        receipts = defaultdict(Counter)
        for path in (self.work / "mail").glob("*"):
            for raw in path.read_text(errors="replace").split("\n" + "-" * 79 + "\n"):
                message = email.message_from_string(raw.strip())
                subject = message.get("Subject") or ""
                if subject.startswith("Your receipt for order"):
                    receipts[subject.rsplit(" ", 1)[-1]][message.get("Message-ID")] += 1
        figures["receipts sent"] = sum(len(ids) for ids in receipts.values())
        figures["receipts sent twice"] = sum(1 for ids in receipts.values() if len(ids) > 1)
        figures["same receipt resent after a crash"] = sum(
            n - 1 for ids in receipts.values() for n in ids.values()
        )
        return {key: int(value) for key, value in figures.items()}


CHECKS = """
from collections import Counter, defaultdict
from commerce.models import Entitlement, Order, StripeEvent
paid = Order.objects.filter(paid_at__isnull=False)
grants = Counter(Entitlement.objects.filter(status="active", order_item__order__in=paid)
                 .values_list("order_item__order_id", flat=True))
wrong = sum(1 for o in paid.filter(status="paid") if grants[o.pk] != o.items.count())
ledger = Counter(StripeEvent.objects.values_list("status", flat=True))
no_receipt = paid.filter(receipt_sent_at__isnull=True, already_owned_at__isnull=True).count()
print(f"orders={Order.objects.count()} paid={paid.count()} wrong_grants={wrong} "
      f"no_receipt={no_receipt} events={sum(ledger.values())} "
      f"unprocessed={ledger['received'] + ledger['failed'] + ledger['dead']}")
"""


def seed():
    """Courses under a catalog, and a learner with a verified address."""
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from wagtail.models import Locale, Page, Site

    from base.models import HomePage
    from courses.models import CourseIndexPage, CoursePage, LessonPage, ModulePage

    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="Home", slug="cluster-home", live=True))
    Site.objects.update_or_create(
        is_default_site=True, defaults={"hostname": "127.0.0.1", "root_page": home}
    )
    catalog = home.add_child(instance=CourseIndexPage(title="Courses", slug="courses", live=True))
    ids = []
    for i in range(COURSES):
        course = catalog.add_child(
            instance=CoursePage(
                title=f"Cluster course {i}",
                slug=f"cluster-{i}",
                summary="s",
                price_amount=1000 + 500 * i,
                price_currency="usd",
                live=True,
            )
        )
        module = course.add_child(instance=ModulePage(title="Module", slug="module", live=True))
        module.add_child(instance=LessonPage(title="Lesson", slug="lesson", live=True))
        ids.append(f"{course.pk}={course.url}")
    user = get_user_model().objects.create_user(
        "learner", "learner@example.com", "cluster-passphrase"
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    print(" ".join(ids))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=300)
    parser.add_argument("--time-limit", type=int, default=600)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        return seed()
    for tool in ("redis-server", "haproxy", "createdb"):
        if not shutil.which(tool):
            sys.exit(f"cluster: {tool} is not installed (see docs/operations.md)")
    cluster = Cluster(args.purchases, args.time_limit)
    started = time.monotonic()
    try:
        cluster.setup()
        failures = cluster.run()
        cross = cluster.sessions_cross_nodes()
        cluster.settle()
        figures = cluster.check()
        once = cluster.schedule_runs_once()
    finally:
        cluster.stop()
    counts = dict(cluster.counts)
    print(f"cluster: {counts}")
    print(f"cluster: {figures}")
    print(
        f"cluster: session across nodes {'ok' if cross else 'FAILED'}; tasks from one due "
        f"schedule with two clusters: {once}; {time.monotonic() - started:.0f} s"
    )
    problems = []
    if failures:
        problems.append(f"{len(failures)} purchases failed: {failures[:3]}")
    if figures["paid"] < args.purchases:
        problems.append(f"only {figures['paid']} of {args.purchases} orders paid")
    for key in ("wrong_grants", "no_receipt", "unprocessed", "receipts sent twice"):
        if figures[key]:
            problems.append(f"{key}: {figures[key]}")
    if figures["receipts sent"] != figures["paid"]:
        problems.append(f"{figures['receipts sent']} receipts for {figures['paid']} paid orders")
    if not cross:
        problems.append("a session from web1 did not work on web2")
    if once != 1:
        problems.append(f"{once} tasks from one schedule run")
    for problem in problems:
        print(f"cluster: FAILED {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
