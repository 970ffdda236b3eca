"""Everything a user's cluster would run for a rollout, on this machine: the control plane, a
real node with our images, the chart's operator pod (watching every namespace), the Traefik
gateway and Prometheus discovering the pods. `make demo` and the real-pod benchmarks use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.prometheus import PrometheusProcess
from tests.node.discovery import discovering_prometheus
from tests.testenv.controlplane import ControlPlane
from tests.testenv.gateway import Gateway
from tests.testenv.images import ImageArchives, ensure_images
from tests.testenv.node import RealNode
from tests.testenv.showcase import CHART, OPERATOR_NAMESPACE


@dataclass(frozen=True)
class NodeStack:
    cp: ControlPlane
    node: RealNode
    images: ImageArchives
    gateway: Gateway
    prometheus: PrometheusProcess


@contextmanager
def node_stack(workdir: Path, say: Callable[[str], None] = print) -> Iterator[NodeStack]:
    """Up in about 2 min with warm caches; everything stops when the context ends."""
    say("Building the operator and server images from the Dockerfile (cached when current)")
    images = ensure_images()
    with ExitStack() as stack:
        say("Starting the control plane: etcd, kube-apiserver, controller-manager, scheduler")
        cp = stack.enter_context(ControlPlane(workdir / "cluster", nodes=0))
        say("Starting a real node: containerd, kubelet, kube-proxy, CoreDNS; importing the images")
        node = stack.enter_context(RealNode(cp, workdir / "node", images=images.archives))
        say(f"Installing the chart: the operator as a pod in {OPERATOR_NAMESPACE}")
        cp.helm("install", "modelrollout", str(CHART), "--namespace", OPERATOR_NAMESPACE,
                "--create-namespace", "--set", "trafficRouting.gatewayAPI=true", "--wait",
                "--timeout=300s", timeout=330)  # fmt: skip
        say("Starting the gateway (Traefik) and Prometheus (discovers the pods itself)")
        gateway = stack.enter_context(Gateway(cp, workdir / "gateway"))
        prometheus = stack.enter_context(discovering_prometheus(node, workdir / "prometheus"))
        yield NodeStack(cp, node, images, gateway, prometheus)
