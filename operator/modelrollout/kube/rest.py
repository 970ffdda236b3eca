"""Generic JSON requests against the API server through the kubernetes client's connection pool.

Paths are built from ResourceKind (no discovery round-trips), so the same few verbs serve built-in
kinds and CRDs (HTTPRoute, VirtualService, ModelDeployment) alike. All methods are synchronous:
call them from async code through asyncio.to_thread.

Requests go straight to the client's urllib3 pool (its TLS, client certificate and proxy
settings) with the configuration's token: the generated ApiClient's request methods changed
shape between kubernetes 36 and 37, and the images install 36 (the s3 extra caps it).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client

from modelrollout.kube.errors import KubeError, KubeUnreachable, NotFound, kube_error
from modelrollout.kube.resources import ResourceKind
from modelrollout.metrics import KUBE_REQUESTS

FIELD_MANAGER = "modelrollout"
JSON = dict[str, Any]
_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)


def _error(status: int, body: bytes) -> KubeError:
    try:
        message = str(json.loads(body).get("message", ""))
    except ValueError:
        message = body.decode(errors="replace")[:500]
    return kube_error(status, message)


class Kube:
    """The operator's handle on the API server: get, list, apply, patch, delete, create."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        config = self.api.configuration
        headers = {
            "Accept": "application/json",
            "Content-Type": content_type,
            "User-Agent": self.api.user_agent,
        }
        # Runs the refresh hook: in-cluster, a rotated ServiceAccount token is re-read.
        bearer = config.auth_settings().get("BearerToken")
        if bearer and bearer.get("value"):
            headers["Authorization"] = bearer["value"]
        url = f"{config.host}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        KUBE_REQUESTS.labels(method).inc()
        try:
            response = self.api.rest_client.pool_manager.request(
                method,
                url,
                body=None if body is None else json.dumps(body),
                headers=headers,
                timeout=_TIMEOUT,
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as error:
            raise KubeUnreachable(f"{method} {path}: {error}") from error
        data: bytes = response.data
        if not 200 <= response.status < 300:
            raise _error(response.status, data)
        if not data:
            return {}
        result: JSON = json.loads(data)
        return result

    def get(self, kind: ResourceKind, namespace: str, name: str) -> JSON | None:
        try:
            return self.request("GET", kind.path(namespace, name))
        except NotFound:
            return None

    def list(self, kind: ResourceKind, namespace: str | None, label_selector: str) -> list[JSON]:
        result = self.request("GET", kind.path(namespace), query={"labelSelector": label_selector})
        items: list[JSON] = result.get("items", [])
        return items

    def apply(self, kind: ResourceKind, manifest: JSON, *, force: bool = True) -> JSON:
        """Server-side apply as field manager "modelrollout" (force: these fields are ours)."""
        meta = manifest["metadata"]
        body = {"apiVersion": kind.api_version, "kind": kind.kind, **manifest}
        query = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        return self.request(
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"]),
            query=query,
            body=body,
            content_type="application/apply-patch+yaml",
        )

    def merge_patch(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        patch: JSON,
        subresource: str | None = None,
    ) -> JSON:
        return self.request(
            "PATCH",
            kind.path(namespace, name, subresource),
            query={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type="application/merge-patch+json",
        )

    def create(self, kind: ResourceKind, namespace: str, body: JSON) -> JSON:
        return self.request(
            "POST", kind.path(namespace), query={"fieldManager": FIELD_MANAGER}, body=body
        )

    def delete(self, kind: ResourceKind, namespace: str, name: str) -> bool:
        """Delete in the background (the garbage collector removes dependents); False if absent."""
        try:
            self.request(
                "DELETE",
                kind.path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except NotFound:
            return False
        return True
