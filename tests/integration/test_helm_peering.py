"""Standby replicas: the chart with peering on, two operators with the chart's ServiceAccount and
the StatefulSet's arguments (priorities from the pod index). Only the higher priority works; the
peering object (a Helm hook) lists both; the RBAC for kopf.dev peerings and the Lease is enough."""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from tests.integration.helm_chart import (
    delete_peering_crds_of,
    installed_release,
    operator_process,
    service_account_kubeconfig,
    wait_for,
)
from tests.testenv.controlplane import ControlPlane, free_port


def replica_args(statefulset: dict[str, Any], index: int) -> list[str]:
    """The container's args as the kubelet would expand them for pod `index` (ports local)."""
    args = []
    for arg in statefulset["spec"]["template"]["spec"]["containers"][0]["args"]:
        arg = arg.replace("$(POD_INDEX)", str(index))
        if arg.startswith("--liveness="):
            arg = f"--liveness=http://127.0.0.1:{free_port()}/healthz"
        elif arg.startswith("--metrics-port="):
            arg = "--metrics-port=0"
        args.append(arg)
    return args


def test_only_the_highest_priority_replica_works(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    peering = f"peer-{uuid.uuid4().hex[:6]}"
    values = ("--set", "peering.enabled=true", "--set", "replicaCount=2",
              "--set", f"peering.name={peering}")  # fmt: skip
    with ExitStack() as stack:
        rel = stack.enter_context(installed_release(cp, *values))
        # Runs after the operators stop (LIFO); the uninstall would keep these CRDs anyway.
        stack.callback(delete_peering_crds_of, cp, rel.name)
        sts = json.loads(
            cp.kubectl("get", "statefulset", f"{rel.name}-modelrollout", "-n", rel.namespace,
                       "-o", "json").stdout
        )  # fmt: skip
        kubeconfig = service_account_kubeconfig(cp, rel, tmp_path / "kubeconfig")
        logs = [tmp_path / f"operator-{i}.log" for i in (0, 1)]

        def peers() -> dict[str, Any]:  # the peering object's status: pod -> priority
            obj = json.loads(
                cp.kubectl("get", "kopfpeering", peering, "-n", rel.apps, "-o", "json").stdout
            )
            status: dict[str, Any] = obj.get("status") or {}
            return status

        def has_peer(pod: str) -> bool:
            return pod in peers()

        # The higher priority first: the lower one then starts paused (mandatory peering starts
        # frozen) and stays so; the other order would race the first object against the pause.
        for i in (1, 0):
            args = replica_args(sts, i)
            assert f"--priority={i}" in args and f"--peering={peering}" in args
            pod = f"replica-{i}"
            stack.enter_context(
                operator_process(args, kubeconfig, logs[i], pod=pod, pod_namespace=rel.namespace)
            )
            wait_for(f"{pod} in the peering object", partial(has_peer, pod))
        status = peers()
        assert (status["replica-0"]["priority"], status["replica-1"]["priority"]) == (0, 1)

        manifest = {
            "apiVersion": "modelrollout.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "peered", "namespace": rel.apps},
            "spec": {
                "model": {"name": "peered", "version": "1", "format": "skops",
                          "uri": "https://models.example/peered/1/model.skops"},
                "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
            },
        }  # fmt: skip
        cp.kubectl("apply", "-f", "-", input=json.dumps(manifest))

        def healthy() -> bool:
            obj = json.loads(
                cp.kubectl("get", "modeldeployment", "peered", "-n", rel.apps, "-o", "json").stdout
            )
            return (obj.get("status") or {}).get("phase") == "Healthy"

        wait_for("the ModelDeployment Healthy", healthy)
        # The shell logs "<namespace>/<name>: ..." for what it does; the standby did nothing.
        active, standby = (log.read_text(errors="replace") for log in reversed(logs))
        assert f"{rel.apps}/peered:" in active
        assert f"{rel.apps}/peered" not in standby
        assert "Forbidden" not in active + standby
        # The one that acted holds the Lease that lets one replica act at a time.
        lease = json.loads(
            cp.kubectl("get", "lease", f"modelrollout-{peering}", "-n", rel.namespace,
                       "-o", "json").stdout
        )  # fmt: skip
        assert lease["spec"]["holderIdentity"] == "replica-1", lease["spec"]
