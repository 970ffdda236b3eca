"""A Gateway API implementation that really routes: Traefik, built from Go modules
(tests/testenv/traefik), reading Gateways and HTTPRoutes from the API server and sending each
request to a pod behind the route's Services in the proportion of the backendRefs' weights.

It runs as a process beside the API server, on the host side of the real node's network, where
pod addresses are routed (Traefik balances over the EndpointSlices' addresses itself, not over
ClusterIPs). The Gateway API CRDs are the standard channel of the version Traefik is built
against (copied into the cache by build.sh).

    with Gateway(cp, workdir / "gateway") as gateway:
        route = {..., "spec": {"parentRefs": [gateway.parent_ref], ...}}
        urllib.request.urlopen(f"{gateway.url}/v2/models/fraud/infer", ...)
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.testenv.controlplane import ControlPlane, free_port, wait_for
from tests.testenv.processes import Children

CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_CLASS = "traefik"
# How long Traefik gathers changes from its providers before it applies them (default 2 s).
THROTTLE = "200ms"


class GatewayUnavailable(RuntimeError):
    """Traefik or the Gateway API CRDs are not built yet."""


def gateway_crds(bin_dir: Path) -> list[Path]:
    return sorted((bin_dir.parent / "etc" / "gateway-api").glob("*.yaml"))


class Gateway:
    """Traefik plus a GatewayClass and a Gateway `namespace/name` with one HTTP listener that
    accepts routes from every namespace; a context manager."""

    def __init__(
        self,
        cp: ControlPlane,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        namespace: str = "gateway-system",
        name: str = "gateway",
    ) -> None:
        self.cp = cp
        self.workdir = workdir
        self.host = host
        self.namespace = namespace
        self.name = name
        self.port = free_port()
        self.api_port = free_port()
        self._children = Children(workdir / "logs")

    @property
    def url(self) -> str:
        """Where clients send requests (the listener)."""
        return f"http://{self.host}:{self.port}"

    @property
    def parent_ref(self) -> dict[str, str]:
        """An HTTPRoute's parentRef to this Gateway."""
        return {"name": self.name, "namespace": self.namespace}

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        binary = self.cp.bin_dir / "traefik"
        crds = gateway_crds(self.cp.bin_dir)
        if not os.access(binary, os.X_OK) or not crds:
            raise GatewayUnavailable(
                f"no Traefik at {binary} or no Gateway API CRDs beside it: run `make testenv`"
            )
        self.cp.kubectl("apply", "--server-side", *(a for c in crds for a in ("-f", str(c))))
        self.cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        *(f"crd/{yaml.safe_load(c.read_text())['metadata']['name']}"
                          for c in crds), timeout=70)  # fmt: skip
        if self.cp.kubectl("get", "namespace", self.namespace, check=False).returncode != 0:
            self.cp.create_namespace(self.namespace)
        self.cp.kubectl("apply", "-f", "-", input=json.dumps(self._objects()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
        env["KUBECONFIG"] = str(self.cp.kubeconfig)
        self._children.start("traefik", [str(binary), *self._flags()], env)
        try:
            wait_for("the Gateway programmed by Traefik", self._programmed, timeout,
                     self._children)  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._children.stop(grace_seconds=5)

    def _flags(self) -> list[str]:
        return [
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--providers.kubernetesgateway=true",
            f"--providers.kubernetesgateway.statusAddress.ip={self.host}",
            f"--providers.providersThrottleDuration={THROTTLE}",
            f"--entryPoints.web.address={self.host}:{self.port}",
            # The API (routers and services as Traefik applied them) on an entry point of its own.
            f"--entryPoints.traefik.address={self.host}:{self.api_port}",
            "--api.insecure=true",
            "--api.dashboard=false",  # its web assets are not in the Go module
            "--ping=true",
            "--log.level=INFO",
        ]

    def _objects(self) -> dict[str, Any]:
        gateway_class = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": CONTROLLER},
        }
        # Traefik binds a listener to the entry point of the same port.
        gateway = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": "web",
                        "protocol": "HTTP",
                        "port": self.port,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        }
        return {"apiVersion": "v1", "kind": "List", "items": [gateway_class, gateway]}

    def _programmed(self) -> bool:
        out = self.cp.kubectl("get", "gateway", self.name, "-n", self.namespace, "-o", "json",
                              check=False)  # fmt: skip
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)

    def api(self, path: str) -> Any:
        """GET Traefik's API (`/api/http/services`...): what it has applied."""
        with urllib.request.urlopen(f"http://{self.host}:{self.api_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def log(self) -> str:
        return (self.workdir / "logs" / "traefik.log").read_text(errors="replace")
