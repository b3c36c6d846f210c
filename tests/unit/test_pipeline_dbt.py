"""The runner's dbt child process: it must not outlive a runner that is killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from smartmeter.config import REPO_ROOT

RUNNER = """
import os, subprocess, sys
from smartmeter.pipeline.dbt import _die_with_parent
child = subprocess.Popen(["sleep", "60"], start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
print(child.pid, flush=True)
child.wait()
"""


def state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return "gone"
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def test_a_sigkilled_runner_takes_its_dbt_child_down():
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert runner.stdout is not None
    child = int(runner.stdout.readline())
    # Alive: sleeping, running, or (on a loaded machine) in uninterruptible disk sleep while it starts.
    assert state(child) not in {"Z", "gone"}
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 10
    while state(child) not in {"Z", "gone"} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state(child) in {"Z", "gone"}
