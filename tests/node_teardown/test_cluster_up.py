"""`make cluster-up` (`python -m tests.testenv.controlplane up --real-node`) as a person runs it:
`kubectl get pods -A` shows the chart's operator and the model servers of `sample` Running in
real containers; `down` removes the node with everything in it.

In this package, not tests/node: its node must not be up at the same time as that package's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_demo import processes_mentioning
from tests.node_teardown.test_node_teardown import netns_names
from tests.testenv.controlplane import MODULE, REPO, default_bin_dir
from tests.testenv.images import ensure_images
from tests.testenv.node_janitor import CleanupSpec, hierarchies
from tests.testenv.showcase import NAME, NAMESPACE, OPERATOR_NAMESPACE
from tests.testenv.waiting import eventually


def controlplane(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", MODULE, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def running_in_containers(pods: list[dict[str, Any]]) -> bool:
    return bool(pods) and all(
        pod["status"].get("phase") == "Running"
        and all(
            cs.get("ready") and cs.get("containerID", "").startswith("containerd://")
            for cs in pod["status"].get("containerStatuses", [])
        )
        for pod in pods
    )


def test_cluster_up_runs_the_operator_and_a_model_in_pods_and_down_removes_them(
    tmp_path: Path,
) -> None:
    ensure_images()  # as `make cluster-up` builds them first
    workdir = tmp_path / "env"
    up = controlplane("up", "--real-node", "--workdir", str(workdir), "--timeout", "900",
                      timeout=960)  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "kubectl get pods -A" in up.stdout
        listed = subprocess.run(
            [str(default_bin_dir() / "kubectl"), "get", "pods", "-A", "-o", "json"],
            env={**os.environ, "KUBECONFIG": str(workdir / "kubeconfig")},
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        pods = json.loads(listed.stdout)["items"]
        operator = [p for p in pods if p["metadata"]["namespace"] == OPERATOR_NAMESPACE]
        servers = [
            p for p in pods if p["metadata"]["namespace"] == NAMESPACE
            and p["metadata"].get("labels", {}).get("modelrollout.io/name") == NAME
        ]  # fmt: skip
        assert len(operator) == 1 and running_in_containers(operator), operator
        assert len(servers) == 2 and running_in_containers(servers), servers
        node = CleanupSpec.read(workdir / "node" / "cleanup.json")
    finally:
        down = controlplane("down", "--workdir", str(workdir), timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr

    def all_gone() -> bool:
        return (
            not processes_mentioning(str(workdir))
            and all(not (h / node.cgroup).exists() for h in hierarchies())
            and node.netns not in netns_names()
        )

    eventually(all_gone, "the node's processes, cgroups and namespace gone", timeout=120)
