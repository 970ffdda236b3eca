"""The test control plane leaves no process behind when the process that started it is
interrupted (Ctrl-C), terminated (SIGTERM) or killed outright (SIGKILL: no Python handler runs,
the kernel's parent-death signal must do it)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_demo import processes_mentioning

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
HOLDER = """
import sys, time
from pathlib import Path
from tests.testenv.controlplane import ControlPlane

with ControlPlane(Path(sys.argv[1]), nodes=1):
    print("READY", flush=True)
    time.sleep(3600)
"""


def gone(workdir: Path) -> list[str]:
    """Processes still naming workdir, after giving the kernel and the children a moment."""
    left = processes_mentioning(str(workdir))
    for _ in range(120):
        if not left:
            break
        time.sleep(0.25)
        left = processes_mentioning(str(workdir))
    return left


@pytest.mark.cluster
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_process_survives_the_holder(tmp_path: Path, signum: signal.Signals) -> None:
    workdir = tmp_path / "cp"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "READY"
        running = processes_mentioning(str(workdir))
        for component in COMPONENTS:
            assert any(f"/{component} " in p for p in running), (component, running)
        holder.send_signal(signum)
        holder.wait(timeout=120)
        assert gone(workdir) == []
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
