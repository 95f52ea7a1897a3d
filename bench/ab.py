"""CPU per webhook delivery of two checkouts, measured back to back in one process each.

The machine's speed drifts between runs of ``make bench``; one process sending deliveries one
at a time through Django's test client, alternating between the checkouts, compares their code
and nothing else. Needs the database a ``make bench`` run leaves behind (coursesite_bench)::

    git worktree add /tmp/before d997b6f
    .venv/bin/python -m bench.ab /tmp/before .

Each checkout runs in its own directory with its own code; both need ``bench.run.cpu_seconds``
(from commit e7f1015 on).

``--instructions`` counts instead the instructions the Python process runs per delivery, under
valgrind's callgrind: the same count however busy the machine is (PostgreSQL's work is not in
it), for changes too small to show through the machine's drift. One round is enough.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.run import SECRET, Bench, cpu_seconds

KINDS = ("completed", "unhandled")


def measure(kind, n):
    """In the child: n deliveries of ``kind`` after 30 to warm up; CPU ms per delivery."""
    import django

    django.setup()
    from django.test import Client

    from bench import seed
    from courses.models import CoursePage

    paid = CoursePage.objects.filter(live=True).exclude(price_amount=0)
    seed.STATE["sold"] = paid.order_by("-path").first()
    make = seed.completed_events if kind == "completed" else seed.unhandled_events
    warm, events = make(30, SECRET), make(n, SECRET)
    client = Client(HTTP_HOST="127.0.0.1")
    counting = os.environ.get("BENCH_AB_CALLGRIND") == "1"
    for i, request in enumerate(warm + events):
        if i == len(warm):
            if counting:  # callgrind counts from here (it started with counting off)
                subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)
            python, used = time.process_time(), cpu_seconds(os.getpid())
        response = client.post(
            request["path"],
            data=request["body"],
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=request["headers"]["Stripe-Signature"],
        )
        assert response.status_code == 200, (response.status_code, response.content)
    if counting:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True)
    python = time.process_time() - python
    postgres = cpu_seconds(os.getpid())["postgres"] - used["postgres"]
    return {"python_ms": round(python / n * 1000, 2), "postgres_ms": round(postgres / n * 1000, 2)}


def child(root, kind, n, instructions=False):
    # The bench's own settings (its ports are unused: nothing is served here).
    env = dict(Bench(n).env, PYTHONPATH=str(root))
    command = [sys.executable, __file__, "--child", kind, str(n)]
    if instructions:
        env["BENCH_AB_CALLGRIND"] = "1"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--callgrind-out-file=/dev/null",
            *command,
        ]
    out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if instructions:
        collected = re.search(r"Collected : (\d+)", out.stderr)
        result["instructions"] = int(collected.group(1)) // n
    return result


def main():
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count Python instructions per delivery under callgrind (one round)",
    )
    args = parser.parse_args()
    if args.instructions:
        print("| delivery | before instructions | after instructions | change |\n|---|---|---|---|")
        for kind in KINDS:
            before, after = (
                child(getattr(args, side).resolve(), kind, args.requests, instructions=True)[
                    "instructions"
                ]
                for side in ("before", "after")
            )
            print(f"| {kind} | {before:,} | {after:,} | {(after - before) / before:+.1%} |")
        return
    runs = {(side, kind): [] for side in ("before", "after") for kind in KINDS}
    for _ in range(args.rounds):
        for kind in KINDS:
            for side in ("before", "after"):
                result = child(getattr(args, side).resolve(), kind, args.requests)
                runs[side, kind].append(round(result["python_ms"] + result["postgres_ms"], 2))
                print(side, kind, result, flush=True)
    # The least of each: the run the machine disturbed least.
    best = {f"{side} {kind}": min(runs[side, kind]) for side, kind in runs}
    print("\n| delivery | before ms | after ms |\n|---|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {best[f'before {kind}']:.2f} | {best[f'after {kind}']:.2f} |")
    if args.json:
        commits = {
            side: subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=getattr(args, side),
                capture_output=True,
                text=True,
            ).stdout.strip()
            for side in ("before", "after")
        }
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.json.write_text(
            json.dumps(
                {
                    "when": when,
                    "commits": commits,
                    "cpu_ms": best,
                    "runs": {f"{side} {kind}": runs[side, kind] for side, kind in runs},
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
