"""Why a pod is not running (pure): what kubelet or the scheduler says about it.

A missing image, a crash loop or an unschedulable pod never makes a Deployment's status say
anything but "not ready"; the pods say why, and the status of the ModelDeployment repeats it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Waiting reasons of a container that is on its way, not in trouble.
_ON_ITS_WAY = frozenset({"ContainerCreating", "PodInitializing"})
_MAX_MESSAGE = 240


@dataclass(frozen=True)
class PodTrouble:
    """The first thing that keeps one pod from running, e.g. ErrImageNeverPull."""

    pod: str
    reason: str
    message: str = ""

    def describe(self) -> str:
        detail = (
            self.message
            if len(self.message) <= _MAX_MESSAGE
            else self.message[:_MAX_MESSAGE] + "..."
        )
        return f"pod {self.pod}: {self.reason}" + (f": {detail}" if detail else "")


def pod_trouble(
    pods: Iterable[Mapping[str, Any]], container: str | None = None
) -> PodTrouble | None:
    """The first trouble among `pods` (ignoring pods being deleted): a waiting container
    (image pull errors, CrashLoopBackOff, CreateContainerConfigError...), only `container`
    when given, else an unschedulable pod. None when they are merely starting or not ready."""
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            continue
        statuses = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        for cs in statuses:
            if container is not None and cs.get("name") != container:
                continue
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason and reason not in _ON_ITS_WAY:
                return PodTrouble(
                    str(meta.get("name", "")), str(reason), str(waiting.get("message") or "")
                )
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return PodTrouble(
                    str(meta.get("name", "")),
                    str(condition.get("reason") or "Unschedulable"),
                    str(condition.get("message") or ""),
                )
    return None
