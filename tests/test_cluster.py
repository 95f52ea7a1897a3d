"""The cluster run (devtools/cluster.py, `make cluster`) as part of the suite: two web nodes
behind HAProxy and two task clusters on Redis survive a killed node, a killed worker and a
Redis restart with every money guarantee intact."""

import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT, postgres_only

pytestmark = [
    postgres_only,
    pytest.mark.skipif(
        not (shutil.which("haproxy") and shutil.which("redis-server")),
        reason="haproxy and redis-server are needed (make cluster-tools)",
    ),
]


def test_three_hundred_purchases_survive_a_node_a_worker_and_redis_going_down(capsys):
    result = subprocess.run(
        [sys.executable, "-m", "devtools.cluster", "--purchases", "300", "--time-limit", "480"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    with capsys.disabled():  # the counts are the point
        print("\n" + "\n".join(line for line in result.stdout.splitlines() if "cluster:" in line))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "purchases that failed': 0" in result.stdout
    assert "'paid': 300" in result.stdout and "'wrong_grants': 0" in result.stdout
