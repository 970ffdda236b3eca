"""core/v1 Events about a ModelDeployment (involvedObject = the ModelDeployment)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from modelrollout.kube.errors import ShellError
from modelrollout.kube.resources import EVENTS, MODELDEPLOYMENTS
from modelrollout.kube.rest import JSON, Kube

log = logging.getLogger(__name__)

COMPONENT = "modelrollout-operator"
_MAX_MESSAGE = 1024


def instance() -> str:
    """Who posts: $MODELROLLOUT_INSTANCE, else the pod's name ($POD_NAME), else the host."""
    name = os.environ.get("MODELROLLOUT_INSTANCE") or os.environ.get("POD_NAME")
    return (name or socket.gethostname())[:128]


def event_body(owner: JSON, type_: str, reason: str, message: str, now: dt.datetime) -> JSON:
    meta = owner["metadata"]
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": MODELDEPLOYMENTS.api_version,
            "kind": MODELDEPLOYMENTS.kind,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:_MAX_MESSAGE],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": f"modelrollout.io/{COMPONENT}",
        "reportingInstance": instance(),
    }


def post_event(kube: Kube, owner: JSON, type_: str, reason: str, message: str) -> None:
    """Best effort: the status already says it; an event that cannot be posted is logged."""
    body = event_body(owner, type_, reason, message, dt.datetime.now(dt.UTC))
    try:
        kube.create(EVENTS, owner["metadata"]["namespace"], body)
    except ShellError as error:
        log.warning("event %s %s not posted: %s", type_, reason, error)
