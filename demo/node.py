"""`make demo`: the demo as users run the product. A real node (containerd, kubelet, kube-proxy,
CoreDNS) beside the test control plane; the chart installs the operator as a pod from our
image; model-server pods from our server image download their model from a file server in the
namespace; Traefik, a Gateway API implementation built from Go modules, carries every request
and routes it by the weights the operator writes to the HTTPRoute; Prometheus discovers the
pods itself. The screen shows, next to each rollout, the share of answers from each model
version as the client measured it through the gateway.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.story import (
    MANIFEST,
    PROMOTE_NS,
    REPO,
    ROLLBACK_NS,
    TITLES,
    manifest,
    print_final,
    say,
    summary_of,
    train,
    watch,
)
from tests.e2e.harness import NAME, revision_of
from tests.integration.operator_process import get_md
from tests.node.routes import gateway_applies, http_route
from tests.node.stack import node_stack
from tests.node.workload import Load, apply, serve_models
from tests.testenv.controlplane import ControlPlane
from tests.testenv.gateway import Gateway
from tests.testenv.showcase import OPERATOR_NAMESPACE
from tests.testenv.waiting import eventually

ROUTE = "fraud-route"  # the HTTPRoute demo-canary.yaml names
CLIENTS = 1  # load threads per namespace: about 40 requests/s each, light on 2 cores


def hostname(namespace: str) -> str:
    """The route's hostname: both namespaces share the Gateway's listener."""
    return f"fraud.{namespace}.demo"


@dataclass
class NodeLane:
    """One namespace of the demo on the real node."""

    cp: ControlPlane
    namespace: str
    title: str
    load: Load
    candidate: str = ""

    def md(self) -> dict[str, Any]:
        return get_md(self.cp, self.namespace, NAME)

    def traffic(self) -> str:
        recent = self.load.recent()
        total = sum(recent.values())
        if not total:
            return "-"
        shares = ", ".join(f"{key}: {n / total:.0%}" for key, n in sorted(recent.items()))
        return f"through the gateway, the last {total} answers: {shares}"


def wait_healthy(cp: ControlPlane, namespace: str, timeout: float = 300) -> None:
    cp.kubectl("wait", "--for=jsonpath={.status.phase}=Healthy", f"modeldeployment/{NAME}",
               "-n", namespace, f"--timeout={timeout:.0f}s", timeout=timeout + 10)  # fmt: skip


def print_keep_help(cp: ControlPlane, gateway: Gateway) -> None:
    print(
        f"""
The demo keeps running (load included) until Ctrl-C. In another terminal:

  export KUBECONFIG={cp.kubeconfig}
  export PATH={cp.bin_dir}:{REPO / ".venv" / "bin"}:$PATH
  kubectl get pods -n {PROMOTE_NS} -o wide      # model-server pods with containerd IDs
  kubectl get pods -n {OPERATOR_NAMESPACE}      # the operator, installed by the chart
  kubectl modelrollout list -A
  kubectl modelrollout status fraud -n {PROMOTE_NS} --watch
  kubectl modelrollout history fraud -n {ROLLBACK_NS}
  kubectl modelrollout retry fraud -n {ROLLBACK_NS}     # roll the worse model out again
  kubectl get httproute {ROUTE} -n {PROMOTE_NS} -o yaml  # the weights the operator writes

The gateway (Traefik) listens on {gateway.url}; one inference through it:

  curl -H 'Host: {hostname(PROMOTE_NS)}' -H 'Content-Type: application/json' \\
    -d '{{"inputs":[{{"name":"x","shape":[1,4],"datatype":"FP64","data":[0,0,0,0]}}]}}' \\
    {gateway.url}/v2/models/fraud/infer
""",
        flush=True,
    )


def run_on_node(workdir: Path, keep: bool, interactive: bool, timeout: float) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    # A previous run's series (same namespaces and revisions) must not enter this run's analysis.
    shutil.rmtree(workdir / "prometheus", ignore_errors=True)
    good, worse = train(workdir)
    with node_stack(workdir, say) as env, ExitStack() as stack:
        cp, gateway, prom = env.cp, env.gateway, env.prometheus
        lanes: list[NodeLane] = []
        versions: dict[str, list[dict[str, Any]]] = {}
        for namespace, title in TITLES.items():
            cp.create_namespace(namespace)
            second = good if namespace == PROMOTE_NS else worse
            files = {"v1.skops": good.path.read_bytes(), "v2.skops": second.path.read_bytes()}
            say(f"{namespace}: a file server for the models; the HTTPRoute {ROUTE}")
            base = serve_models(cp, namespace, env.images.server_image, files)
            apply(cp, namespace, http_route(gateway, NAME, ROUTE, hostname(namespace)))
            versions[namespace] = [
                manifest(v, prom.url, f"{base}/v{v}.skops",
                         hashlib.sha256(files[f"v{v}.skops"]).hexdigest())
                for v in ("1", "2")
            ]  # fmt: skip
            load = Load(gateway.host, NAME, CLIENTS, port=gateway.port, host=hostname(namespace))
            lanes.append(NodeLane(cp, namespace, title, load))
        for lane in lanes:
            say(f"{lane.namespace}: `kubectl apply` of {MANIFEST.name} (version 1)")
            apply(cp, lane.namespace, versions[lane.namespace][0])
        for lane in lanes:
            wait_healthy(cp, lane.namespace)
            eventually(lambda ns=lane.namespace: gateway_applies(gateway, ns, NAME, 0),
                       "the gateway routing to version 1", 60)  # fmt: skip
            stack.enter_context(lane.load)
            say(f"{lane.namespace}: version 1 Healthy; load through the gateway")
        for lane in lanes:
            v2 = versions[lane.namespace][1]
            lane.candidate = revision_of(v2)
            say(f"{lane.namespace}: `kubectl apply` of version 2: the canary rollout starts")
            apply(cp, lane.namespace, v2)
        say("Watching: 20% -> pause 8s -> analysis -> 50% -> pause 8s -> analysis -> promote")
        objs = watch(lanes, interactive, timeout)
        summary = summary_of(lanes, objs)
        summary["measuredThroughGateway"] = {ln.namespace: dict(ln.load.counts()) for ln in lanes}
        print_final(lanes, objs)
        if keep:
            print_keep_help(cp, gateway)
            while True:
                time.sleep(3600)
        say("Stopping load, gateway, Prometheus, the node and the control plane")
    say("Everything stopped.")
    print("DEMO-SUMMARY " + json.dumps(summary), flush=True)
    return summary
