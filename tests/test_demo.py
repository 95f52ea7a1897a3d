"""`make demo`: the runner stops every process it started, and the seeded catalogue looks real."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STOP_WITHIN_SECONDS = 10

# --- the runner: Ctrl-C stops the whole process tree ----------------------------------------

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_stat(pid):
    """(ppid, start time) of a live process, or None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), fields[19]


def descendants(root):
    """Every live process below root, as {pid: start time} (the start time tells reused pids)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))):
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = {}, [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            found[pid] = started
            todo.append(pid)
    return found


def still_running(processes):
    return {pid for pid, started in processes.items() if (s := proc_stat(pid)) and s[1] == started}


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def answers(url):
    """True once a server answers at url, whatever its status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_until(condition, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory):
    """A throwaway SQLite database with every migration applied, made once for this module."""
    path = tmp_path_factory.mktemp("demo-db") / "db.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=demo_env(path, path.parent),
        check=True,
        timeout=300,
    )
    return path


def demo_env(database, workdir):
    """The demo's own settings on the given database; nothing from the test settings leaks in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{database}",
        MEDIA_ROOT=str(workdir / "media"),
        PRIVATE_MEDIA_ROOT=str(workdir / "private-media"),
        Q_WORKERS="2",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def running_demo(migrated_database, tmp_path):
    """`python -m devtools.demo` as a terminal's foreground job (a process group of its own),
    on free ports, once the site, the Stripe emulator and the task cluster are all up."""
    database = tmp_path / "db.sqlite3"
    shutil.copy(migrated_database, database)
    port, stripe_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--port", str(port)]
        + ["--stripe-port", str(stripe_port)],
        cwd=ROOT,
        env=demo_env(database, tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = {}

    def everything_up():
        started.update(descendants(demo.pid))
        cluster = [pid for pid in started if "qcluster" in cmdline(pid)]
        # qcluster: main, sentinel, monitor, pusher and two workers
        return (
            len(cluster) >= 6
            and answers(f"http://127.0.0.1:{port}/healthz")
            and answers(f"http://127.0.0.1:{stripe_port}/")
        )

    try:
        if not wait_until(everything_up, timeout=90, interval=0.5):
            pytest.fail("the demo did not start:\n" + (tmp_path / "demo.log").read_text())
        time.sleep(1)  # let late children (the cluster's workers) settle, then count them all
        started.update(descendants(demo.pid))
        yield demo, started
    finally:
        # Never leave anything behind, even when the test failed: only what this demo started.
        for pid in still_running(started):
            os.kill(pid, signal.SIGKILL)
        if demo.poll() is None:
            demo.kill()
        demo.wait(timeout=10)
        log.close()


@needs_proc
def test_ctrl_c_stops_the_whole_demo_within_ten_seconds(running_demo):
    demo, started = running_demo
    assert len(started) >= 9  # emulator, runserver and its reloader, the qcluster tree
    os.killpg(demo.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


@needs_proc
def test_sigint_to_the_runner_alone_stops_every_process_it_started(running_demo):
    demo, started = running_demo
    demo.send_signal(signal.SIGINT)
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


@needs_proc
def test_sigterm_to_the_runner_stops_every_process_it_started(running_demo):
    demo, started = running_demo
    demo.terminate()
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]


@needs_proc
def test_ctrl_c_pressed_twice_still_stops_every_process_it_started(running_demo):
    demo, started = running_demo
    os.killpg(demo.pid, signal.SIGINT)
    time.sleep(0.3)  # the impatient second press, while the demo is stopping
    os.killpg(demo.pid, signal.SIGINT)
    demo.wait(timeout=STOP_WITHIN_SECONDS)
    assert wait_until(lambda: not still_running(started), timeout=1), [
        cmdline(pid) for pid in still_running(started)
    ]
