"""The plugin's only I/O: ModelDeployments and their Deployments through the kubernetes client.

Connection settings follow kubectl: --kubeconfig, else $KUBECONFIG, else ~/.kube/config;
--context; the namespace from -n, else the context's namespace, else "default".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from modelrollout.api.names import GROUP, PLURAL, VERSION

Obj = dict[str, Any]


class CliError(Exception):
    """A failure to show the user as one line (exit code 1)."""


@dataclass(frozen=True)
class Connection:
    kubeconfig: str | None
    context: str | None
    namespace: str | None


def _context_namespace(conn: Connection) -> str:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=conn.kubeconfig)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        return "default"
    chosen = active
    if conn.context:
        chosen = next((c for c in contexts if c.get("name") == conn.context), active)
    ns = (chosen or {}).get("context", {}).get("namespace")
    return str(ns) if ns else "default"


class ModelDeployments:
    """Reads and patches ModelDeployments in one namespace (or all, for list)."""

    def __init__(self, conn: Connection) -> None:
        try:
            self._api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=conn.kubeconfig, context=conn.context
            )
        except (config.ConfigException, OSError) as err:
            raise CliError(f"cannot load kubeconfig: {err}") from err
        self._api.user_agent = "kubectl-modelrollout"
        self.namespace = conn.namespace or _context_namespace(conn)
        self._custom = client.CustomObjectsApi(self._api)
        self._apps = client.AppsV1Api(self._api)

    def get(self, name: str) -> Obj:
        return self._call(
            name,
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            ),
        )

    def list(self, all_namespaces: bool) -> list[Obj]:
        if all_namespaces:
            result = self._call(
                "", lambda: self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            )
        else:
            result = self._call(
                "",
                lambda: self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL
                ),
            )
        return cast(list[Obj], result.get("items", []))

    def patch_status(self, name: str, patch: Obj) -> Obj:
        """A merge patch through the status subresource (control requests live there)."""
        return self._call(
            name,
            lambda: self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            ),
        )

    def patch_spec(self, name: str, patch: Obj) -> Obj:
        """A merge patch of the object itself (spec.paused, spec.model for undo)."""
        return self._call(
            name,
            lambda: self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            ),
        )

    def revision_deployment(self, name: str, revision: str) -> Obj | None:
        """The Deployment `<name>-<revision>` as a plain dict, or None when it is gone."""
        try:
            dep = self._apps.read_namespaced_deployment(f"{name}-{revision}", self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise CliError(_explain(err, f"deployment {name}-{revision}", self.namespace)) from err
        return cast(Obj, self._api.sanitize_for_serialization(dep))

    def watch(self, name: str, timeout_seconds: int | None) -> Iterator[Obj]:
        """The object after every change (the first event is its current state)."""
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}"}
        if timeout_seconds:
            kwargs["timeout_seconds"] = timeout_seconds
        try:
            for event in stream.stream(  # type: ignore[no-untyped-call]
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                **kwargs,
            ):
                if event.get("type") == "DELETED":
                    raise CliError(f"modeldeployment {name} was deleted")
                yield cast(Obj, event["object"])
        except ApiException as err:
            raise CliError(_explain(err, f"modeldeployment {name}", self.namespace)) from err
        finally:
            stream.stop()  # type: ignore[no-untyped-call]

    def _call(self, name: str, fn: Any) -> Obj:
        try:
            return cast(Obj, fn())
        except ApiException as err:
            what = f"modeldeployment {name}" if name else "modeldeployments"
            raise CliError(_explain(err, what, self.namespace)) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise CliError(f"cannot reach the API server: {err}") from err


def _explain(err: ApiException, what: str, namespace: str) -> str:
    if err.status == 404:
        if "could not find the requested resource" in _message(err):
            return f"{what}: the API server does not serve ModelDeployments (CRD not installed?)"
        return f"{what} not found in namespace {namespace!r}"
    if err.status == 403:
        return f"forbidden: {what} in namespace {namespace!r}: {_message(err)}"
    return f"{what}: {err.status} {err.reason}: {_message(err)}"


def _message(err: ApiException) -> str:
    try:
        body = json.loads(err.body or "{}")
    except ValueError:
        return str(err.body or "")
    return str(body.get("message", err.body))
