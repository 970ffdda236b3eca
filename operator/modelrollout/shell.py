"""One idempotent reconcile: observe -> core.decide -> carry out the Plan.

Level-triggered and safe to run any number of times: everything that matters is read from the
API server (the ModelDeployment, its Deployments, the routing objects), so a restarted operator
continues where the status says it was. The spec is never written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from modelrollout import metrics
from modelrollout.analysis.hook import AnalysisHook
from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus, ValidationStatus
from modelrollout.core.children import (
    DEFAULT_SERVER_IMAGE,
    OwnerRef,
    deployment_manifest,
    deployment_name,
    service_manifests,
    shadow_config_manifest,
)
from modelrollout.core.decide import decide
from modelrollout.core.observation import (
    Fault,
    Observation,
    RevisionObservation,
    TrafficObservation,
)
from modelrollout.core.plan import Plan
from modelrollout.core.revision import compute_revision
from modelrollout.core.routing import is_blue_green
from modelrollout.kube import (
    CONFIGMAPS,
    DEPLOYMENTS,
    MODELDEPLOYMENTS,
    SERVICES,
    Conflict,
    Kube,
    ResourceKind,
    ShellError,
    holdout_job,
)
from modelrollout.kube.events import post_event
from modelrollout.kube.observe import observe_revisions
from modelrollout.kube.rest import JSON
from modelrollout.kube.status import write_status_as_decided
from modelrollout.traffic.base import RoutedObject, TrafficRouter
from modelrollout.traffic.factory import router_for
from modelrollout.traffic.weighted import WeightedRouter

log = logging.getLogger(__name__)

CONFLICT_RETRY_SECONDS = 0.2


@dataclass
class Shell:
    """The operator's process-wide I/O state (one per operator process)."""

    kube: Kube
    # Metric analysis (Prometheus); None: analysis steps pause as "not available".
    analysis: AnalysisHook | None = None
    server_image: str = field(
        default_factory=lambda: os.environ.get("MODELROLLOUT_SERVER_IMAGE", DEFAULT_SERVER_IMAGE)
    )
    # What this process last applied per child: unchanged manifests are not sent again.
    # Only an optimisation: a restarted process starts empty and applies everything once.
    applied: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # resourceVersion of our own last status write per object, so its watch event is ignored.
    written: dict[tuple[str, str], str] = field(default_factory=dict)
    invalid: dict[tuple[str, str], int] = field(default_factory=dict)
    # The routing objects holding weights, (plural, namespace, name) -> the ModelDeployments
    # (namespace, name) that write them: a change by someone else wakes those (handlers.py).
    routing_users: dict[tuple[str, str, str], set[tuple[str, str]]] = field(default_factory=dict)

    def forget_applied(self, kind: ResourceKind, namespace: str, name: str) -> None:
        """The child is gone: the next reconcile sends its manifest again."""
        self.applied.pop((kind.plural, namespace, name), None)

    def use_routing_object(
        self, kind: ResourceKind, where: tuple[str, str], md: tuple[str, str]
    ) -> None:
        """`md` (namespace, name) writes its weights into the routing object `where`."""
        for users in self.routing_users.values():
            users.discard(md)  # a spec may name another routing object than before
        self.routing_users.setdefault((kind.plural, *where), set()).add(md)

    def forget(self, namespace: str, name: str) -> None:
        for users in self.routing_users.values():
            users.discard((namespace, name))
        self.written.pop((namespace, name), None)
        self.invalid.pop((namespace, name), None)
        prefix = f"{name}-"
        for key in [k for k in self.applied if k[1] == namespace and k[2].startswith(prefix)]:
            del self.applied[key]
        for key in [k for k in self.applied if k[1] == namespace and k[2] == name]:
            del self.applied[key]


def _digest(manifest: JSON) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _apply(shell: Shell, kind: ResourceKind, manifest: JSON, force_send: bool = False) -> None:
    meta = manifest["metadata"]
    key = (kind.plural, meta["namespace"], meta["name"])
    digest = _digest(manifest)
    if not force_send and shell.applied.get(key) == digest:
        return
    shell.kube.apply(kind, manifest)
    shell.applied[key] = digest


def _scale(shell: Shell, namespace: str, name: str, replicas: int) -> None:
    """Old revisions are only scaled: their template came from an older spec."""
    shell.kube.merge_patch(DEPLOYMENTS, namespace, name, {"spec": {"replicas": replicas}})


@dataclass(frozen=True)
class _ParsedObject:
    body: JSON
    name: str
    namespace: str
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    owner: OwnerRef
    target: RoutedObject
    router: TrafficRouter
    revision: str


def _fault(error: ShellError) -> Fault:
    return Fault(reason=error.reason, message=str(error))


def _observe(
    shell: Shell, ctx: _ParsedObject, faults: list[Fault]
) -> tuple[dict[str, RevisionObservation], TrafficObservation | None, ValidationStatus | None]:
    """What the decision needs from the world; what cannot be read becomes a fault."""
    revisions: dict[str, RevisionObservation] = {}
    traffic: TrafficObservation | None = None
    holdout: ValidationStatus | None = None
    try:
        revisions = observe_revisions(shell.kube, ctx.namespace, ctx.name)
        traffic = ctx.router.current_weight(ctx.target)
        holdout = holdout_job.observe_for(
            shell.kube, ctx.namespace, ctx.name, ctx.spec, ctx.revision
        )
    except ShellError as error:
        faults.append(_fault(error))
    return revisions, traffic, holdout


def _carry_out(
    shell: Shell, ctx: _ParsedObject, plan: Plan, observed: dict[str, RevisionObservation]
) -> None:
    """Children first (Deployments, Services, routing), then pruning; status comes after."""
    for desired in plan.revisions:
        seen = observed.get(desired.revision)
        if desired.revision == ctx.revision:
            manifest = deployment_manifest(
                ctx.owner,
                ctx.namespace,
                ctx.spec,
                desired.revision,
                desired.replicas,
                image=shell.server_image,
            )
            drifted = seen is not None and seen.replicas != desired.replicas
            _apply(shell, DEPLOYMENTS, manifest, force_send=seen is None or drifted)
        elif seen is not None and seen.replicas != desired.replicas:
            _scale(
                shell, ctx.namespace, deployment_name(ctx.name, desired.revision), desired.replicas
            )
        elif seen is None:
            log.warning("revision %s has no Deployment to scale; skipped", desired.revision)
    for manifest in service_manifests(ctx.owner, ctx.namespace, ctx.spec, plan.traffic):
        _apply(shell, SERVICES, manifest)
    shadow = shadow_config_manifest(ctx.owner, ctx.namespace, ctx.spec, plan.traffic)
    _apply(shell, CONFIGMAPS, shadow)
    traffic = plan.traffic
    if is_blue_green(ctx.spec):
        if traffic.active_revision is not None:
            ctx.router.switch_active(ctx.target, traffic.active_revision, traffic.preview_revision)
    elif traffic.stable_revision is not None:
        ctx.router.set_weight(
            ctx.target, traffic.stable_revision, traffic.canary_revision, traffic.canary_weight
        )
    for revision in plan.prune:
        child = deployment_name(ctx.name, revision)
        shell.kube.delete(DEPLOYMENTS, ctx.namespace, child)
        shell.forget_applied(DEPLOYMENTS, ctx.namespace, child)
    if plan.validation_due is not None:
        holdout_job.start_for(
            shell.kube,
            ctx.owner,
            ctx.namespace,
            ctx.spec,
            plan.status,
            plan.validation_due,
            shell.server_image,
        )


def _write_status(shell: Shell, ctx: _ParsedObject, plan: Plan) -> bool:
    """False when someone changed the object since we read it (reconcile again)."""
    new = plan.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    try:
        result = write_status_as_decided(shell.kube, ctx.body, new)
    except Conflict:
        log.debug("%s/%s changed since it was read: deciding again", ctx.namespace, ctx.name)
        return False
    if result is not None:
        shell.written[ctx.namespace, ctx.name] = result["metadata"]["resourceVersion"]
    for event in plan.events:
        log.info("%s/%s: %s: %s", ctx.namespace, ctx.name, event.reason, event.message)
        post_event(shell.kube, ctx.body, event.type, event.reason, event.message)
        metrics.EVENTS.labels(event.type, event.reason).inc()
    return True


def _parse(shell: Shell, body: JSON) -> _ParsedObject | None:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        generation = int(meta.get("generation", 0))
        if shell.invalid.get((namespace, name)) != generation:
            shell.invalid[namespace, name] = generation
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            post_event(shell.kube, body, "Warning", "InvalidSpec", f"{where}: {first['msg']}")
        return None
    owner = OwnerRef.for_md(name, meta["uid"])
    target = RoutedObject(name, namespace, owner.manifest())
    router = router_for(spec, shell.kube)
    if isinstance(router, WeightedRouter):
        kind, where_namespace, where_name = router.weight_object(target)
        shell.use_routing_object(kind, (where_namespace, where_name), (namespace, name))
    return _ParsedObject(
        body=body,
        name=name,
        namespace=namespace,
        spec=spec,
        status=status,
        owner=owner,
        target=target,
        router=router,
        revision=compute_revision(spec),
    )


def reconcile_sync(shell: Shell, namespace: str, name: str) -> float | None:
    """Blocking body of one reconcile; returns seconds until the next deadline, if any."""
    body = shell.kube.get(MODELDEPLOYMENTS, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    ctx = _parse(shell, body)
    if ctx is None:
        return None
    faults: list[Fault] = []
    observed, traffic, holdout = _observe(shell, ctx, faults)
    obs = Observation(
        now=dt.datetime.now(dt.UTC),
        generation=int(body["metadata"].get("generation", 0)),
        revisions=observed,
        traffic=traffic,
        analysis_available=shell.analysis is not None,
        validation=holdout,
        faults=tuple(faults),
    )
    evaluate = shell.analysis.evaluate if shell.analysis is not None else None
    plan = decide(name, namespace, ctx.spec, ctx.status, obs, evaluate=evaluate)
    if shell.analysis is not None and not plan.hold:
        # Measure what the core asked for, then decide again with the results (analysis hook).
        # A source that cannot answer is an Error measurement, not a fault: onError decides.
        due = plan.analysis_due
        measured = shell.analysis.measure_if_due(namespace, name, due, obs.now)
        if measured is not None:
            obs = replace(obs, measurements=measured)
            plan = decide(name, namespace, ctx.spec, ctx.status, obs, evaluate=evaluate)
    if not plan.hold:
        try:
            _carry_out(shell, ctx, plan, observed)
        except ShellError as error:
            # Part of the plan may be carried out: the decision sees the fault and holds there.
            log.warning("%s/%s: %s", namespace, name, error)
            obs = replace(obs, faults=(_fault(error),))
            plan = decide(name, namespace, ctx.spec, ctx.status, obs, evaluate=evaluate)
    if not _write_status(shell, ctx, plan):
        metrics.RECONCILES.labels("conflict").inc()
        return CONFLICT_RETRY_SECONDS
    phase = plan.status.phase.value if plan.status.phase else "Pending"
    metrics.remember_object(
        namespace,
        name,
        phase,
        plan.status.canary_weight,
        model=ctx.spec.model.name,
        version=ctx.spec.model.version,
        stable_revision=plan.status.stable_revision or "",
        canary_revision=plan.status.canary_revision or "",
        monitoring=plan.status.monitoring.state.value if plan.status.monitoring else "",
        breaches=plan.status.monitoring.breaches if plan.status.monitoring else 0,
    )
    metrics.RECONCILES.labels("success").inc()
    return plan.requeue_after


async def reconcile(shell: Shell, namespace: str, name: str) -> float | None:
    """Observe, decide, act; the sync client runs in a worker thread (never on the loop)."""
    with metrics.RECONCILE_SECONDS.time():
        try:
            return await asyncio.to_thread(reconcile_sync, shell, namespace, name)
        except Exception:
            metrics.RECONCILES.labels("error").inc()
            raise
