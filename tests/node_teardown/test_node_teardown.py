"""The real node leaves nothing behind when the process that owns it stops or is SIGKILLed with
a pod running: no process (containerd's shims and the containers outlive containerd), mount,
cgroup, network namespace (with its veth, routes and iptables rules) or changed kernel setting.

A package of its own: the host routes of the real node in tests/node would clash with the
holder's node while that package's node is up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_demo import processes_mentioning
from tests.testenv.controlplane import default_bin_dir
from tests.testenv.node import POD_SUBNET, SYSCTLS, _sysctl_path, missing_requirements
from tests.testenv.node_janitor import hierarchies
from tests.testenv.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import json, sys, time
from pathlib import Path
from tests.testenv.controlplane import ControlPlane
from tests.testenv.node import RealNode
from tests.testenv.pause_image import PAUSE_IMAGE

workdir = Path(sys.argv[1])
with ControlPlane(workdir / "cp", nodes=0) as cp, RealNode(cp, workdir / "node") as node:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
           "spec": {"containers": [{"name": "c", "image": PAUSE_IMAGE}]}}
    cp.kubectl("apply", "-n", "default", "-f", "-", input=json.dumps(pod))
    cp.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=120s", timeout=130)
    print(json.dumps({"netns": node.netns, "cgroup": node.cgroup}), flush=True)
    time.sleep(3600)
"""


def mounts_naming(text: str) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if text in line]


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_nothing_survives_the_owner(tmp_path: Path, signum: signal.Signals) -> None:
    missing = missing_requirements(default_bin_dir())
    assert not missing, f"a real node needs: {'; '.join(missing)}"
    before = {name: _sysctl_path(name).read_text() for name in SYSCTLS}
    workdir = tmp_path / "holder"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line, "the holder failed to start a node (its stderr is above)"
        made = json.loads(line)
        assert made["netns"] in netns_names()
        pids = {int(p) for h in hierarchies()
                for p in (h / made["cgroup"]).rglob("cgroup.procs")
                for p in p.read_text().split()}  # fmt: skip
        assert len(pids) >= 5  # containerd, kubelet, kube-proxy, CoreDNS, the shim and the pod
        holder.send_signal(signum)
        holder.wait(timeout=120)

        def all_gone() -> bool:
            # A killed process stays in /proc until its new parent has reaped it.
            return (
                not any(Path(f"/proc/{pid}").exists() for pid in pids)
                and not processes_mentioning(str(workdir))
                and all(not (h / made["cgroup"]).exists() for h in hierarchies())
                and made["netns"] not in netns_names()
            )

        eventually(all_gone, "the node's processes, cgroups and namespace gone", timeout=120)
        assert mounts_naming(str(workdir)) == []
        assert mounts_naming(made["cgroup"]) == []
        routes = subprocess.run(["ip", "route", "show", str(POD_SUBNET)],
                                capture_output=True, text=True).stdout  # fmt: skip
        assert routes.strip() == ""
        assert {name: _sysctl_path(name).read_text() for name in SYSCTLS} == before
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
