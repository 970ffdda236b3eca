"""`make demo KEEP=1`, then Ctrl-C: the demo stays up and prints how to reach it, the person's
kubectl and plugin work with what it printed, and Ctrl-C (SIGINT to the whole foreground process
group, as a terminal sends it) stops everything, leaving no process behind."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_demo import processes_mentioning

REPO = Path(__file__).resolve().parents[2]


Lines = queue.Queue[str | None]


def read_until(lines: Lines, seen: list[str], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(marker in line for line in seen):
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line is not None, "the demo exited:\n" + "".join(seen[-60:])
        seen.append(line)


@pytest.mark.e2e
def test_keep_serves_kubectl_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo.run", "--kwok", "--keep", "--non-interactive",
         "--workdir", str(workdir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )  # fmt: skip
    lines: Lines = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        read_until(lines, seen, "kubectl modelrollout list -A", 600)
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in seen
            if line.strip().startswith(("export KUBECONFIG=", "export PATH="))
        )
        env = dict(
            os.environ,
            KUBECONFIG=exports["KUBECONFIG"],
            PATH=exports["PATH"].replace("$PATH", os.environ["PATH"]),
        )
        listed = subprocess.run(
            ["kubectl", "modelrollout", "list", "-A"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert "demo-promote" in listed.stdout and "demo-rollback" in listed.stdout
        time.sleep(2)  # still up: KEEP does not end on its own
        assert proc.poll() is None

        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=180) == 130
        while (line := lines.get(timeout=10)) is not None:
            seen.append(line)
        assert any("no process left running" in line for line in seen), "".join(seen[-30:])
        assert processes_mentioning(str(workdir)) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
