"""`make demo-kwok`: the quick variant of the demo, on kwok's fake nodes. Nothing needs root, no
image is built: a real control plane, Prometheus, the operator as a process and model servers
as processes on this machine. kwok runs no containers, so the demo runs one real
`modelrollout-server` per revision itself, gives Prometheus labelled targets, and a load
generator splits requests by the weights the operator writes to each HTTPRoute (built from the
e2e harness, tests/e2e/harness.py)."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
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
from modelrollout.kube import Kube, make_api_client
from tests.e2e.harness import HTTPROUTE_CRD, MD_CRD, NAME, Env, Fleet, http_route, revision_of
from tests.e2e.prometheus import PrometheusProcess
from tests.integration.operator_process import Operator, get_md, install_crds
from tests.testenv.controlplane import ControlPlane

RPS = 40.0  # per namespace: enough requests for every 2 s measurement, light on 2 cores


@dataclass
class KwokLane(Env):
    """One namespace of the kwok demo (Prometheus is shared: its targets cover every lane)."""

    title: str = ""
    lanes: list[KwokLane] = field(default_factory=list, repr=False, compare=False)
    candidate: str = ""

    def add_revision(self, manifest: dict[str, Any], *faults: str) -> str:
        revision = revision_of(manifest)
        self.fleet.start(revision, *faults)
        self.prom.set_targets([t for ln in self.lanes for t in ln.fleet.targets(ln.namespace)])
        self.prom.wait_for(f'up{{namespace="{self.namespace}",revision="{revision}"}} == 1')
        return revision

    def md(self) -> dict[str, Any]:
        return get_md(self.cp, self.namespace, NAME)

    def traffic(self) -> str:
        sent = self.load.sent if self.load else {}
        return ", ".join(f"{rev}: {n} requests" for rev, n in sent.items()) or "-"


def print_keep_help(cp: ControlPlane) -> None:
    print(
        f"""
The demo keeps running (load included) until Ctrl-C. In another terminal:

  export KUBECONFIG={cp.kubeconfig}
  export PATH={cp.bin_dir}:{REPO / ".venv" / "bin"}:$PATH
  kubectl get modeldeployments -A
  kubectl modelrollout list -A
  kubectl modelrollout status fraud -n {PROMOTE_NS} --watch
  kubectl modelrollout history fraud -n {ROLLBACK_NS}
  kubectl modelrollout retry fraud -n {ROLLBACK_NS}     # roll the worse model out again
  kubectl get deployments,services,httproutes -n {PROMOTE_NS}
""",
        flush=True,
    )


def run_on_kwok(workdir: Path, keep: bool, interactive: bool, timeout: float) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    # A previous run's series (same namespaces and revisions) must not enter this run's analysis.
    shutil.rmtree(workdir / "prometheus", ignore_errors=True)
    good, worse = train(workdir)
    with ExitStack() as stack:
        say("Starting the control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok")
        say("  (fake nodes: pods turn Running without containers; about 20-40 s)")
        cp = stack.enter_context(ControlPlane(workdir / "cluster"))
        say(f"Control plane up at {cp.server}; installing the ModelDeployment and HTTPRoute CRDs")
        install_crds(cp, MD_CRD, "modeldeployments.modelrollout.io")
        install_crds(cp, HTTPROUTE_CRD, "httproutes.gateway.networking.k8s.io")
        for namespace in (PROMOTE_NS, ROLLBACK_NS):
            cp.create_namespace(namespace)
            cp.kubectl("apply", "-f", "-", input=json.dumps(http_route(namespace)))
        say("Starting Prometheus (scrapes every model server each second)")
        prom = PrometheusProcess(workdir / "prometheus")
        stack.callback(prom.stop)
        prom.start()
        say(f"Starting the operator (modelrollout-operator) for {PROMOTE_NS} and {ROLLBACK_NS}")
        operator = Operator(cp, PROMOTE_NS, workdir, "--standalone", "--namespace", ROLLBACK_NS)
        stack.callback(operator.stop)
        operator.start()
        api = make_api_client(str(cp.kubeconfig))
        stack.callback(api.close)
        kube = Kube(api)
        lanes: list[KwokLane] = []
        for namespace, title in TITLES.items():
            fleet = Fleet(good.path, workdir, ("--fault-latency-ms", "20"))
            stack.callback(fleet.stop)
            lane = KwokLane(cp, namespace, prom, fleet, kube, operator, title=title, lanes=lanes)
            stack.callback(lambda ln=lane: ln.load.stop() if ln.load else None)
            lanes.append(lane)

        v1, v2 = (manifest(v, prom.url, f"https://models.example/fraud/{v}/model.skops")
                  for v in ("1", "2"))  # fmt: skip
        for lane in lanes:
            say(f"{lane.namespace}: model server for version 1; `kubectl apply` of {MANIFEST.name}")
            stable = lane.deploy_stable(v1, RPS)
            say(f"{lane.namespace}: version 1 Healthy (revision {stable}); load {RPS:.0f} req/s")
        for lane in lanes:
            lane.fleet.model = good.path if lane.namespace == PROMOTE_NS else worse.path
            say(f"{lane.namespace}: model server for version 2 ({lane.fleet.model.name})")
            lane.candidate = lane.add_revision(v2)
        for lane in lanes:
            say(f"{lane.namespace}: `kubectl apply` of version 2: the canary rollout starts")
            lane.apply(v2)
        say("Watching: 20% -> pause 8s -> analysis -> 50% -> pause 8s -> analysis -> promote")
        objs = watch(lanes, interactive, timeout)
        summary = summary_of(lanes, objs)
        print_final(lanes, objs)
        if keep:
            print_keep_help(cp)
            while True:
                time.sleep(3600)
        say("Stopping load, model servers, operator, Prometheus and the control plane")
    say("Everything stopped.")
    print("DEMO-SUMMARY " + json.dumps(summary), flush=True)
    return summary
