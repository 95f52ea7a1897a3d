"""Where a webhook delivery's CPU goes under load, beside the floor: a diagnostic, not a target.

Serves the site as ``make bench`` does and sends rounds of first deliveries, unhandled events,
the floor, and the floor with extra round trips (``SELECT 1`` after its INSERT), 8 clients
each. For each it prints throughput and, per request, the CPU the web workers and PostgreSQL
spent in user and system mode and their context switches. Needs the database a ``make bench``
run leaves behind (coursesite_bench)::

    .venv/bin/python -m bench.probe --json docs/bench/webhook-probe.json
    .venv/bin/python -m bench.probe --workers 8 --threads 1

With ``--json`` the medians are kept for docs/performance.md (``make bench`` reads them).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench import run

FIELDS = ("web_user", "web_system", "pg_user", "pg_system", "web_switches", "pg_switches")


def usage(web_pid):
    """CPU ticks and context switches so far of the web workers and of PostgreSQL."""
    used = dict.fromkeys(FIELDS, 0)
    for process, entry, fields in run.processes(web_pid):
        who = "web" if process == "web" else "pg"
        used[f"{who}_user"] += int(fields[11])
        used[f"{who}_system"] += int(fields[12])
        try:
            for task in (entry / "task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches" in line:
                        used[f"{who}_switches"] += int(line.split()[1])
        except OSError:  # the process ended meanwhile
            continue
    return used


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=run.WORKERS)
    parser.add_argument("--threads", type=int, default=run.THREADS)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--extra-round-trips", type=int, default=6)
    parser.add_argument("--json", type=Path, help="also write the medians to this file")
    args = parser.parse_args()
    run.WORKERS, run.THREADS = args.workers, args.threads
    bench = run.Bench(args.requests)
    os.environ.update(bench.env)
    import django

    django.setup()
    from bench import seed
    from courses.models import CoursePage

    sold = CoursePage.objects.filter(live=True).exclude(price_amount=0).order_by("-path").first()
    if sold is None:
        raise SystemExit("no bench database: run `make bench` first")
    seed.STATE["sold"] = sold
    extra = args.extra_round_trips
    kinds = {
        "first delivery": lambda n: seed.completed_events(n, run.SECRET),
        "unhandled type": lambda n: seed.unhandled_events(n, run.SECRET),
        "floor": lambda n: [
            dict(e, path="/bench/floor/") for e in seed.completed_events(n, run.SECRET)
        ],
        f"floor + {extra} round trips": lambda n: [
            dict(e, path=f"/bench/floor/{extra}/") for e in seed.completed_events(n, run.SECRET)
        ],
    }
    tick = os.sysconf("SC_CLK_TCK")
    bench.start()
    try:
        for make in kinds.values():
            bench.load(make(80), 8)  # connections opened, statements prepared
        rows = {kind: [] for kind in kinds}
        for _ in range(args.rounds):
            for kind, make in kinds.items():
                requests = make(args.requests)
                before = usage(bench.web.pid)
                result = bench.load(requests, 8)
                after = usage(bench.web.pid)
                per = {
                    name: (after[name] - before[name])
                    / len(requests)
                    * (1 if name.endswith("switches") else 1000 / tick)
                    for name in FIELDS
                }
                rows[kind].append({"throughput": result["throughput"], **per})
    finally:
        bench.stop()
    print(
        f"{args.workers} workers x {args.threads} threads, 8 clients, median of {args.rounds} "
        "rounds; CPU ms and context switches per request"
    )
    print(f"| request | per s | {' | '.join(FIELDS)} |")
    print("|---" * (len(FIELDS) + 2) + "|")
    medians = {}
    for kind, runs in rows.items():
        middle = medians[kind] = {
            name: round(statistics.median(r[name] for r in runs), 2) for name in runs[0]
        }
        print(
            f"| {kind} | {middle['throughput']:.0f} | "
            + " | ".join(f"{middle[name]:.2f}" for name in FIELDS)
            + " |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "host": run.machine(),
                    "server": f"{args.workers} workers x {args.threads} threads",
                    "extra_round_trips": extra,
                    "medians": medians,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
