"""Run the demo site: the web server, a task worker and (without a real Stripe key) the
local Stripe emulator, stopped together with Ctrl-C."""

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stripe-port", type=int, default=12111)
    args = parser.parse_args()

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a terminated demo stops its children too
    env = dict(os.environ, DEBUG=os.environ.get("DEBUG", "1"))
    procs = []
    if not env.get("STRIPE_SECRET_KEY") and importlib.util.find_spec("devtools.stripe_emulator"):
        secret = env.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_demo_local_only")
        env["STRIPE_SECRET_KEY"] = "sk_test_emulator"
        env["STRIPE_PUBLISHABLE_KEY"] = "pk_test_emulator"
        env["STRIPE_API_BASE"] = f"http://127.0.0.1:{args.stripe_port}"
        procs.append(
            subprocess.Popen(
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
                ],
                env=env,
            )
        )
        print(f"Local Stripe emulator on http://127.0.0.1:{args.stripe_port} (test card: any)")
    procs.append(subprocess.Popen([sys.executable, "manage.py", "qcluster"], env=env))
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{args.port}"], env=env
    )
    procs.append(web)
    print(f"Demo site on http://127.0.0.1:{args.port}/ — press Ctrl-C to stop.")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # qcluster may hang on SIGTERM
        deadline = time.time() + 10
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
