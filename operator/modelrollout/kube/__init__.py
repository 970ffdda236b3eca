"""Thin Kubernetes I/O for the operator (sync client; call it via asyncio.to_thread)."""

from modelrollout.kube.client import USER_AGENT, make_api_client
from modelrollout.kube.errors import Conflict, KubeError, NotFound, ShellError
from modelrollout.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    HTTPROUTES,
    INGRESSES,
    MODELDEPLOYMENTS,
    SERVICES,
    VIRTUALSERVICES,
    ResourceKind,
)
from modelrollout.kube.rest import Kube

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "EVENTS",
    "HTTPROUTES",
    "INGRESSES",
    "MODELDEPLOYMENTS",
    "SERVICES",
    "USER_AGENT",
    "VIRTUALSERVICES",
    "Conflict",
    "Kube",
    "KubeError",
    "NotFound",
    "ResourceKind",
    "ShellError",
    "make_api_client",
]
