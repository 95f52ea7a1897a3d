"""Run the demo site: the web server, a task worker and (without a real Stripe key) the
local Stripe emulator, stopped together with Ctrl-C.

Each child runs in a session (and so a process group) of its own, so the terminal's Ctrl-C
reaches this process only: django-q's cluster can hang when a second SIGINT lands while it is
already stopping, which is what happens when the terminal and this runner both signal it.
On Ctrl-C, SIGTERM or SIGHUP every child's whole group (the cluster's sentinel and workers,
runserver's reloader) gets one SIGINT; whatever still runs after ``GRACE_SECONDS`` (or at a
second Ctrl-C) gets SIGKILL.
"""

import argparse
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 5


class Runner:
    def __init__(self, env):
        self.env = env
        self.procs = []
        self.stop_requested = False
        self.force = False

    def request_stop(self, signum, frame):
        if self.stop_requested:
            self.force = True  # a second Ctrl-C: no more waiting
            return
        self.stop_requested = True

    def start(self, args):
        if self.stop_requested:
            return None
        proc = subprocess.Popen(args, env=self.env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def signal_groups(self, signum):
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)  # start_new_session: the group id is the pid

    def groups_alive(self):
        alive = False
        for proc in self.procs:
            proc.poll()  # reap an exited leader, so it does not count as alive
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                continue
            alive = True
        return alive

    def stop(self, grace=GRACE_SECONDS):
        """One SIGINT to every group (qcluster may hang on SIGTERM), SIGKILL after grace."""
        self.signal_groups(signal.SIGINT)
        deadline = time.monotonic() + grace
        while not self.force and time.monotonic() < deadline and self.groups_alive():
            time.sleep(0.1)
        self.signal_groups(signal.SIGKILL)
        for proc in self.procs:
            proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stripe-port", type=int, default=12111)
    args = parser.parse_args()

    env = dict(os.environ, DEBUG=os.environ.get("DEBUG", "1"))
    env.setdefault("SITE_URL", f"http://127.0.0.1:{args.port}")  # links in e-mails and pages
    if not env.get("STREAM_CUSTOMER_CODE"):  # offline: a local file stands in for Stream videos
        env.setdefault("STREAM_LOCAL_VIDEO", "/static/demo/lesson-video.webm")
    runner = Runner(env)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, runner.request_stop)
    exit_code = 0
    try:
        if not env.get("STRIPE_SECRET_KEY") and importlib.util.find_spec(
            "devtools.stripe_emulator"
        ):
            secret = env.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_demo_local_only")
            env["STRIPE_SECRET_KEY"] = "sk_test_emulator"
            env["STRIPE_PUBLISHABLE_KEY"] = "pk_test_emulator"
            env["STRIPE_API_BASE"] = f"http://127.0.0.1:{args.stripe_port}"
            runner.start(
                [
                    sys.executable,
                    "-m",
                    "devtools.stripe_emulator",
                    "--port",
                    str(args.stripe_port),
                    "--webhook-url",
                    f"http://127.0.0.1:{args.port}/webhooks/stripe/",
                    "--webhook-secret",
                    secret,
                ]
            )
            print(f"Local Stripe emulator on http://127.0.0.1:{args.stripe_port} (test card: any)")
        runner.start([sys.executable, "manage.py", "qcluster"])
        runner.start([sys.executable, "manage.py", "runserver", f"127.0.0.1:{args.port}"])
        if not runner.stop_requested:
            print(f"Demo site on http://127.0.0.1:{args.port}/ — press Ctrl-C to stop.")
        while not runner.stop_requested:
            if any(proc.poll() is not None for proc in runner.procs):
                print("A demo process exited; stopping the others.", file=sys.stderr)
                exit_code = 1
                break
            time.sleep(0.2)
    finally:
        print("Stopping the demo…", flush=True)
        runner.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
