"""A small load generator, run as its own process.

Input (stdin, JSON): {"url", "requests": [{"method", "path", "body", "headers"}, ...],
"concurrency": N, "groups": [[i, j, k], ...]}. A group's requests go out at the same moment,
each on its own connection (duplicate deliveries); without groups every request is its own
group and each of the N workers keeps one connection alive.
Output (stdout, JSON): throughput and latency percentiles in milliseconds.
"""

import http.client
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


class Run:
    def __init__(self, spec):
        target = urlsplit(spec["url"])
        self.host, self.port = target.hostname, target.port
        self.requests = spec["requests"]
        self.groups = spec.get("groups") or [[i] for i in range(len(self.requests))]
        self.concurrency = spec["concurrency"]
        self.latencies, self.statuses = [], {}
        self.lock = threading.Lock()
        self.next = 0

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def send(self, conn, req):
        """One request; returns the (possibly new) connection."""
        started = time.perf_counter()
        try:
            conn.request(
                req.get("method", "GET"),
                req["path"],
                body=req.get("body", "").encode(),
                headers=req.get("headers", {}),
            )
            response = conn.getresponse()
            response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn, status = self.connect(), "error"
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latencies.append(elapsed)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        return conn

    def take(self):
        with self.lock:
            i, self.next = self.next, self.next + 1
        return self.groups[i] if i < len(self.groups) else None

    def worker(self):
        conns = []
        while (group := self.take()) is not None:
            while len(conns) < len(group):
                conns.append(self.connect())
            if len(group) == 1:
                conns[0] = self.send(conns[0], self.requests[group[0]])
                continue
            threads = [
                threading.Thread(target=self.send, args=(conns[k], self.requests[i]))
                for k, i in enumerate(group)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for conn in conns:
            conn.close()

    def __call__(self):
        started = time.perf_counter()
        threads = [threading.Thread(target=self.worker) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        lat = self.latencies
        return {
            "requests": len(lat),
            "seconds": round(wall, 3),
            "throughput": round(len(lat) / wall, 1),
            "p50": round(percentile(lat, 50), 2),
            "p95": round(percentile(lat, 95), 2),
            "p99": round(percentile(lat, 99), 2),
            "mean": round(statistics.fmean(lat), 2),
            "statuses": self.statuses,
        }


if __name__ == "__main__":
    json.dump(Run(json.load(sys.stdin))(), sys.stdout)
