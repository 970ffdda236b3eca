"""An in-memory API server behind the operator's own client, for unit tests of the shell.

`FakeKube` is a `Kube` whose one I/O method, `request`, is answered from dicts instead of HTTP:
every verb of `Kube` (get, list, apply, merge_patch, create, delete) runs unchanged on top of it,
so the paths, content types and bodies the shell sends are what the fake sees. It models only
what the operator uses, the way the API server does it:

- objects are keyed by (ResourceKind, namespace, name); reads return copies;
- every change gets a new resourceVersion (one counter, as etcd's revision); a write that
  changes nothing keeps it (as the API server does for a no-op patch or apply);
- metadata.generation starts at 1 and grows when the spec changes; writes to the `status`
  subresource change only the status (never the generation), writes to the object itself never
  change the status (every kind here has a status subresource);
- a merge patch carrying metadata.resourceVersion that is not the current one fails with
  Conflict (409); a create of an existing name fails with Conflict (AlreadyExists);
- server-side apply creates the object or replaces the fields it names (spec, labels,
  annotations, ownerReferences): the operator is the only field manager of its children here;
- a kind the fake does not serve answers 404, as an API server without that CRD does.

Tests change the world as other clients would (a person, Kopf, the Deployment controller) with
`add`, `edit`, `remove` and `make_ready`, which are not operator requests and are not logged;
`requests` logs every operator request (also those that failed), `fail_next` makes the next
matching one raise (a KubeError, a timeout) and `before_next` runs another client's write just
before it (a real Conflict). Not modelled: finalizers, garbage collection, defaulting, watches.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelrollout.kube import resources
from modelrollout.kube.errors import Conflict, KubeError, NotFound
from modelrollout.kube.holdout_job import JOBS
from modelrollout.kube.resources import PODS, ResourceKind
from modelrollout.kube.rest import JSON, Kube

KINDS = (
    resources.MODELDEPLOYMENTS,
    resources.DEPLOYMENTS,
    resources.SERVICES,
    resources.CONFIGMAPS,
    resources.EVENTS,
    resources.INGRESSES,
    resources.HTTPROUTES,
    resources.VIRTUALSERVICES,
    JOBS,
    PODS,
)
VERBS = ("get", "list", "create", "apply", "patch", "delete")
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# Set by the API server only; a write never changes them.
_SYSTEM_FIELDS = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp")

Key = tuple[ResourceKind, str, str]


@dataclass(frozen=True)
class Request:
    """One request the operator made (also the ones that failed)."""

    verb: str  # one of VERBS
    kind: ResourceKind
    namespace: str | None
    name: str | None
    subresource: str | None
    body: Any
    query: dict[str, str]

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion precondition a write carried, if any."""
        if not isinstance(self.body, dict):
            return None
        version: str | None = (self.body.get("metadata") or {}).get("resourceVersion")
        return version


@dataclass
class _Intercept:
    verb: str
    kind: ResourceKind
    name: str | None
    subresource: str | None
    action: Callable[[], None]

    def matches(self, request: Request) -> bool:
        return (
            request.verb == self.verb
            and request.kind == self.kind
            and self.name in (None, request.name)
            and self.subresource in (None, request.subresource)
        )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def matches_selector(labels: dict[str, str], selector: str) -> bool:
    """Equality (`k=v`) and existence (`k`) terms, comma-separated: all the operator sends."""
    for term in filter(None, selector.split(",")):
        key, equals, value = term.partition("=")
        if key not in labels or (equals and labels[key] != value):
            return False
    return True


class FakeKube(Kube):
    def __init__(self, kinds: tuple[ResourceKind, ...] = KINDS) -> None:
        # No ApiClient: `request` below is the whole API server.
        self.kinds = {(k.group, k.version, k.plural): k for k in kinds}
        self.objects: dict[Key, JSON] = {}
        self.requests: list[Request] = []
        self._intercepts: list[_Intercept] = []
        self._revision = itertools.count(1)
        self._created = itertools.count(1)

    # What tests use ---------------------------------------------------------------------

    def fail_next(
        self,
        verb: str,
        kind: ResourceKind,
        error: BaseException,
        *,
        name: str | None = None,
        subresource: str | None = None,
    ) -> None:
        """The next matching request raises `error` (a KubeError, a timeout, ...) unserved."""

        def fail() -> None:
            raise error

        self._intercept(verb, kind, name, subresource, fail)

    def before_next(
        self,
        verb: str,
        kind: ResourceKind,
        action: Callable[[], None],
        *,
        name: str | None = None,
        subresource: str | None = None,
    ) -> None:
        """Run `action` (e.g. another client's `edit`) just before serving the next match."""
        self._intercept(verb, kind, name, subresource, action)

    def add(self, kind: ResourceKind, obj: JSON) -> JSON:
        """Create `obj` as another client would (not logged, never intercepted)."""
        meta = obj.get("metadata") or {}
        return self._create(kind, meta.get("namespace", ""), obj)

    def edit(
        self, kind: ResourceKind, namespace: str, name: str, change: Callable[[JSON], None]
    ) -> JSON:
        """Another client's write: `change` mutates a copy of the object, which is stored."""
        old = self.objects[kind, namespace, name]
        new = copy.deepcopy(old)
        change(new)
        return copy.deepcopy(self._commit((kind, namespace, name), old, new, spec_may_change=True))

    def remove(self, kind: ResourceKind, namespace: str, name: str) -> None:
        """Another client deletes the object (not logged)."""
        del self.objects[kind, namespace, name]

    def make_ready(self, namespace: str) -> None:
        """The Deployment controller and kubelets: every Deployment's pods become ready."""
        for kind, ns, name in list(self.objects):
            if kind == resources.DEPLOYMENTS and ns == namespace:
                self.edit(kind, ns, name, _all_pods_ready)

    def stored(self, kind: ResourceKind, namespace: str, name: str) -> JSON | None:
        """The object as stored now (a copy; not a request)."""
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def names(self, kind: ResourceKind, namespace: str) -> list[str]:
        return sorted(n for k, ns, n in self.objects if k == kind and ns == namespace)

    def events(self) -> list[JSON]:
        """Every Event stored, in the order they were posted."""
        return [copy.deepcopy(o) for (k, _, _), o in self.objects.items() if k == resources.EVENTS]

    def made(self, verb: str | None = None, kind: ResourceKind | None = None) -> list[Request]:
        """The operator's requests so far, optionally only of one verb and/or kind."""
        return [
            r
            for r in self.requests
            if (verb is None or r.verb == verb) and (kind is None or r.kind == kind)
        ]

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.verb not in ("get", "list")]

    # The API server ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        kind, namespace, name, subresource = self._route(path)
        request = Request(
            verb=_verb(method, content_type, name),
            kind=kind,
            namespace=namespace,
            name=name,
            subresource=subresource,
            body=copy.deepcopy(body),
            query=dict(query or {}),
        )
        self.requests.append(request)
        for intercept in self._intercepts:
            if intercept.matches(request):
                self._intercepts.remove(intercept)
                intercept.action()
                break
        return copy.deepcopy(self._serve(request))

    def _intercept(
        self,
        verb: str,
        kind: ResourceKind,
        name: str | None,
        subresource: str | None,
        action: Callable[[], None],
    ) -> None:
        if verb not in VERBS:
            raise ValueError(f"verb {verb!r} is not one of {VERBS}")
        self._intercepts.append(_Intercept(verb, kind, name, subresource, action))

    def _route(self, path: str) -> tuple[ResourceKind, str | None, str | None, str | None]:
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace = None
        if rest[0] == "namespaces" and len(rest) > 2:
            namespace, rest = rest[1], rest[2:]
        kind = self.kinds.get((group, version, rest[0]))
        if kind is None:
            raise NotFound(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        return kind, namespace, name, subresource

    def _serve(self, request: Request) -> JSON:
        kind, namespace, name = request.kind, request.namespace or "", request.name or ""
        key = (kind, namespace, name)
        if request.verb == "list":
            return self._list(kind, request.namespace, request.query.get("labelSelector", ""))
        if request.verb == "create":
            return self._create(kind, namespace, request.body)
        old = self.objects.get(key)
        if request.verb == "apply":
            if old is None:
                return self._create(kind, namespace, request.body)
            applied = copy.deepcopy(old)
            for field, value in request.body.items():
                if field not in ("apiVersion", "kind", "metadata", "status"):
                    applied[field] = copy.deepcopy(value)
            meta = request.body.get("metadata") or {}
            for field in ("labels", "annotations", "ownerReferences"):
                if field in meta:
                    applied["metadata"][field] = copy.deepcopy(meta[field])
            return self._commit(key, old, applied, spec_may_change=True)
        if old is None:
            raise NotFound(404, f'{kind.plural} "{name}" not found')
        if request.verb == "get":
            return old
        if request.verb == "delete":
            del self.objects[key]
            return old
        # merge patch
        wanted = request.resource_version
        if wanted is not None and wanted != old["metadata"]["resourceVersion"]:
            raise Conflict(
                409,
                f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        patched = merge_patch(old, request.body)
        if request.subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = patched.get("status") or {}
        elif request.subresource is None:
            new = patched
            new["status"] = copy.deepcopy(old.get("status") or {})
        else:
            raise NotFound(404, f"no subresource {request.subresource!r}")
        return self._commit(key, old, new, spec_may_change=request.subresource is None)

    def _list(self, kind: ResourceKind, namespace: str | None, selector: str) -> JSON:
        items = [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0][1:])
            if k == kind
            and namespace in (None, ns)
            and matches_selector(obj["metadata"].get("labels") or {}, selector)
        ]
        return {"kind": f"{kind.kind}List", "items": items}

    def _create(self, kind: ResourceKind, namespace: str, body: JSON) -> JSON:
        obj = copy.deepcopy(body)
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        meta = obj.setdefault("metadata", {})
        count = next(self._created)
        if not meta.get("name"):
            meta["name"] = f"{meta['generateName']}{count:05x}"
        key = (kind, namespace, meta["name"])
        if key in self.objects:
            raise Conflict(409, f'{kind.plural} "{meta["name"]}" already exists')
        created = _EPOCH + dt.timedelta(seconds=count)
        meta.update(
            namespace=namespace,
            uid=f"uid-{count}",
            creationTimestamp=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            generation=1,
            resourceVersion=str(next(self._revision)),
        )
        self.objects[key] = obj
        return obj

    def _commit(self, key: Key, old: JSON, new: JSON, *, spec_may_change: bool) -> JSON:
        for field in _SYSTEM_FIELDS:
            if field in old["metadata"]:
                new.setdefault("metadata", {})[field] = old["metadata"][field]
        if new == old:
            return old  # a no-op write: the resourceVersion stays
        meta = new["metadata"]
        if spec_may_change and new.get("spec") != old.get("spec"):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = str(next(self._revision))
        self.objects[key] = new
        return new


def _all_pods_ready(deployment: JSON) -> None:
    replicas = int(deployment["spec"].get("replicas", 1))
    deployment["status"] = {"replicas": replicas, "readyReplicas": replicas}


def model_deployment(
    version: str,
    steps: list[JSON] | None = None,
    *,
    name: str = "fraud",
    namespace: str = "ml",
    **spec: Any,
) -> JSON:
    """A canary ModelDeployment on the replicas router (no CRDs needed), as a person applies it."""
    canary = {"steps": steps or [{"setWeight": 50}], "trafficRouting": {"replicas": {}}}
    return {
        "apiVersion": resources.MODELDEPLOYMENTS.api_version,
        "kind": resources.MODELDEPLOYMENTS.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": model(version, name),
            "replicas": 4,
            "strategy": {"canary": canary},
            **spec,
        },
    }


def model(version: str, name: str = "fraud") -> JSON:
    return {"name": name, "version": version, "uri": f"s3://models/{name}/{version}.skops"}


def _verb(method: str, content_type: str, name: str | None) -> str:
    if method == "GET":
        return "get" if name is not None else "list"
    if method == "POST":
        return "create"
    if method == "DELETE":
        return "delete"
    if method == "PATCH" and content_type == "application/apply-patch+yaml":
        return "apply"
    if method == "PATCH" and content_type == "application/merge-patch+json":
        return "patch"
    raise KubeError(405, f"{method} {content_type} is not served by FakeKube")
