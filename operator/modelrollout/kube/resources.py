"""The API resources the operator reads and writes, addressed by REST path (no discovery)."""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout.api.names import GROUP, KIND, PLURAL, VERSION


@dataclass(frozen=True)
class ResourceKind:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource is not None:
                base += f"/{subresource}"
        return base


MODELDEPLOYMENTS = ResourceKind(GROUP, VERSION, KIND, PLURAL)
DEPLOYMENTS = ResourceKind("apps", "v1", "Deployment", "deployments")
SERVICES = ResourceKind("", "v1", "Service", "services")
PODS = ResourceKind("", "v1", "Pod", "pods")
CONFIGMAPS = ResourceKind("", "v1", "ConfigMap", "configmaps")
EVENTS = ResourceKind("", "v1", "Event", "events")
LEASES = ResourceKind("coordination.k8s.io", "v1", "Lease", "leases")
INGRESSES = ResourceKind("networking.k8s.io", "v1", "Ingress", "ingresses")
HTTPROUTES = ResourceKind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
VIRTUALSERVICES = ResourceKind(
    "networking.istio.io", "v1beta1", "VirtualService", "virtualservices"
)
