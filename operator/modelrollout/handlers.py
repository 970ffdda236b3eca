"""Kopf wiring only: every trigger wakes one daemon per ModelDeployment, which reconciles.

- create / update / resume of a ModelDeployment, any watch event on it (status control fields
  such as abort/promote arrive as status patches), and changes of its Deployments wake it;
- otherwise it sleeps until the next deadline the core reported (Plan.requeue_after), so an idle
  operator makes no API requests besides its watches.
Handlers return None: a return value would be written into the status by Kopf. The wake-up
handlers are async (no I/O): asyncio.Event is not thread-safe, and sync handlers run in threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from modelrollout import metrics
from modelrollout.analysis.hook import AnalysisHook
from modelrollout.api.names import (
    FINALIZER,
    GROUP,
    HOLDOUT_JOB_LABEL,
    KOPF_PREFIX,
    NAME_LABEL,
    PLURAL,
    VERSION,
)
from modelrollout.kube import HTTPROUTES, INGRESSES, SERVICES, VIRTUALSERVICES, Kube
from modelrollout.kube.client import POOL_SIZE, make_api_client
from modelrollout.kube.errors import ShellError, Throttled
from modelrollout.kube.events import instance
from modelrollout.kube.lease import Leadership
from modelrollout.shell import Shell, reconcile
from modelrollout.traffic.weighted import last_writer

log = logging.getLogger(__name__)

# Argo CD's tracking must not count as a change of the spec.
IGNORED_FIELDS: list[Any] = [
    ("metadata", "annotations", "argocd.argoproj.io/tracking-id"),
    ("metadata", "labels", "app.kubernetes.io/instance"),
]
WORKERS = POOL_SIZE
ERROR_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# A ShellError that escapes a reconcile could not reach the object itself (reading it, writing
# its status): nothing to report in it. Waiting for the API server to come back is the usual
# case, so retry as often as a held rollout rechecks (5 s); a throttled server gets the full
# backoff instead, not more requests.
UNREACHABLE_BACKOFF = (1.0, 2.0, 5.0)

# Seconds between looks at the Lease by a replica that does not hold it.
STANDBY_RECHECK_S = 5.0

_shell: Shell | None = None
# With standby replicas, the Lease that lets one of them act at a time (see use_lease).
_lease_name: tuple[str, str] | None = None
_leadership: Leadership | None = None
# Daemons running in this replica: none while Kopf's peering has paused it.
_running_daemons = 0
_wakers: dict[tuple[str, str], asyncio.Event] = {}
# Last seen (generation, status) per ModelDeployment.
_seen: dict[tuple[str, str], tuple[Any, str]] = {}
# Last seen (replicas, readyReplicas, deleted) per Deployment: other status churn wakes nobody.
_deployments: dict[str, tuple[int, int, bool]] = {}


def _waker(namespace: str, name: str) -> asyncio.Event:
    return _wakers.setdefault((namespace, name), asyncio.Event())


def _wake(namespace: str | None, name: str | None) -> None:
    # Only running daemons: one that starts later reconciles first anyway, and a deleted
    # ModelDeployment's children must not leave wakers behind.
    waker = _wakers.get((namespace or "", name or ""))
    if waker is not None:
        waker.set()


def _the_shell() -> Shell:
    if _shell is None:
        raise kopf.TemporaryError("the operator is starting", delay=1)
    return _shell


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _shell
    # The sync client runs in worker threads: enough of them (and of pooled connections, see
    # kube.client) that a thousand objects do not queue behind six threads.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=WORKERS))
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration", ignored_fields=IGNORED_FIELDS
    )
    settings.posting.enabled = True
    settings.posting.reporting_component = "modelrollout-operator"
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    kube = Kube(make_api_client())
    _shell = Shell(kube, analysis=AnalysisHook.create(kube))
    if _lease_name is not None:
        global _leadership
        _leadership = Leadership(kube, *_lease_name, identity=instance())
        asyncio.get_running_loop().create_task(_keep_lease(_leadership))


def use_lease(namespace: str, name: str) -> None:
    """Act only while holding the Lease `namespace/name` (replicas with peering)."""
    global _lease_name
    _lease_name = (namespace, name)


async def _keep_lease(leadership: Leadership) -> None:
    """Renew the Lease while this replica runs daemons, so that an idle holder keeps it; a
    replica paused by peering runs none and lets it lapse for the one that runs (it still looks,
    to take over as soon as the record expires once it runs)."""
    while True:
        await asyncio.to_thread(leadership.ensure, claim=_running_daemons > 0)
        await asyncio.sleep(leadership.times.retry_s)


async def _may_act() -> bool:
    return _leadership is None or await asyncio.to_thread(_leadership.ensure)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def spec_changed(namespace: str | None, name: str | None, **_: Any) -> None:
    _wake(namespace, name)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def md_event(
    type: str | None, namespace: str | None, name: str | None, body: kopf.Body, **_: Any
) -> None:
    if type == "DELETED" or not namespace or not name or _shell is None:
        _seen.pop((namespace or "", name or ""), None)
        return
    # Only the spec (generation) and the status matter to a reconcile: Kopf's own annotation
    # patches (progress, diff base, finalizer) come back as events too and must not each cost
    # a reconcile. Our own status write is recorded but wakes nobody.
    key = (body.metadata.get("generation"), json.dumps(body.get("status"), sort_keys=True))
    if _seen.get((namespace, name)) == key:
        return
    _seen[namespace, name] = key
    if _shell.written.get((namespace, name)) == body.metadata.get("resourceVersion"):
        return
    _wake(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={NAME_LABEL: kopf.PRESENT})
async def deployment_event(
    type: str | None, namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any
) -> None:
    uid = str(body.metadata.get("uid"))
    deleted = type == "DELETED"
    state = (
        int(body.get("spec", {}).get("replicas", 1)),
        int(body.get("status", {}).get("readyReplicas") or 0),
        deleted,
    )
    if _deployments.get(uid) == state:
        return
    if deleted:
        _deployments.pop(uid, None)
    else:
        _deployments[uid] = state
    _wake(namespace, labels.get(NAME_LABEL))


@kopf.on.event("", "v1", "services", labels={NAME_LABEL: kopf.PRESENT})
async def service_event(
    type: str | None, namespace: str | None, name: str | None, labels: kopf.Labels, **_: Any
) -> None:
    # Someone deleted a Service clients call: apply it again now, not at the next spec change.
    if type != "DELETED" or not namespace or not name or _shell is None:
        return
    _shell.forget_applied(SERVICES, namespace, name)
    _wake(namespace, labels.get(NAME_LABEL))


@kopf.on.event("batch", "v1", "jobs", labels={HOLDOUT_JOB_LABEL: kopf.PRESENT})
async def validation_job_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    # The validator's result: the Job's status changes once its pod has terminated.
    _wake(namespace, labels.get(NAME_LABEL))


ROUTING_KINDS = {kind.plural: kind for kind in (HTTPROUTES, VIRTUALSERVICES, INGRESSES)}


def watch_routing(plurals: Iterable[str]) -> None:
    """Watch these kinds of routing objects (the chart passes the routers it grants RBAC for).

    Someone else's change to a routing object that holds a rollout's weight (an Argo CD sync of
    the route from Git, a person) wakes that rollout at once, which puts the weight back and says
    who changed it; the routing objects are never polled.
    """
    for plural in plurals:
        kind = ROUTING_KINDS[plural]
        kopf.on.event(kind.group, kind.version, kind.plural, id=f"routing-{plural}")(routing_event)


async def routing_event(
    type: str | None,
    namespace: str | None,
    name: str | None,
    body: kopf.Body,
    resource: kopf.Resource,
    **_: Any,
) -> None:
    if _shell is None or not namespace or not name:
        return
    if type != "DELETED" and last_writer(dict(body)) is None:
        return  # our own write (or nobody changed it since)
    users = _shell.routing_users.get((resource.plural, namespace, name), set())
    for md_namespace, md_name in list(users):
        _wake(md_namespace, md_name)


async def _sleep(waker: asyncio.Event, stopped: kopf.DaemonStopped, delay: float | None) -> None:
    wake = asyncio.ensure_future(waker.wait())
    stop = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({wake, stop}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        wake.cancel()
        stop.cancel()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=2.0)
async def rollout(
    namespace: str | None, name: str | None, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Reconcile now, then whenever woken or the next deadline passes."""
    if not namespace or not name:
        return
    global _running_daemons
    waker = _waker(namespace, name)
    failures = 0
    _running_daemons += 1
    try:
        while not stopped:
            waker.clear()
            try:
                if await _may_act():
                    delay = await reconcile(_the_shell(), namespace, name)
                else:
                    delay = STANDBY_RECHECK_S  # another replica holds the Lease
                failures = 0
            except kopf.TemporaryError as error:
                delay = error.delay or 1.0
            except ShellError as error:
                steps = ERROR_BACKOFF if isinstance(error, Throttled) else UNREACHABLE_BACKOFF
                delay = steps[min(failures, len(steps) - 1)]
                failures += 1
                log.warning("%s/%s: %s (again in %.0f s)", namespace, name, error, delay)
            except Exception:
                log.exception("reconcile of %s/%s failed", namespace, name)
                delay = ERROR_BACKOFF[min(failures, len(ERROR_BACKOFF) - 1)]
                failures += 1
            await _sleep(waker, stopped, delay)
    finally:
        _running_daemons -= 1
        if stopped and _shell is not None:
            _wakers.pop((namespace, name), None)
            _seen.pop((namespace, name), None)
            metrics.forget(namespace, name)
            _shell.forget(namespace, name)
