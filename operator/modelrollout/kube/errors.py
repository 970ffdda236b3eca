"""The shell's exceptions: every failure while observing or acting is a ShellError.

The shell catches ShellError around each observation and each action and hands it to the pure
decision as a `core.observation.Fault` (its `reason` and message), which holds the rollout
where it is and says why in the status and in one Warning event per cause. Anything else that
escapes a reconcile is a bug: Kopf logs it and retries with a backoff.

    ShellError                  reason: a CamelCase word for conditions and events
    +-- KubeError               the API server refused a request (HTTP status)
    |   +-- NotFound            404
    |   +-- Conflict            409: a resourceVersion precondition or an apply conflict
    |   +-- Forbidden           403: RBAC
    |   +-- Invalid             422: admission refused the object
    |   +-- Throttled           429: API Priority and Fairness
    |   +-- ServerError         5xx
    +-- KubeUnreachable         no answer from the API server (connect or read timeout, reset)
    +-- traffic.RouterError     a routing object missing or not referencing our Services
    +-- analysis.MetricFetchError  a metric source could not answer (becomes an Error verdict)
"""

from __future__ import annotations


class ShellError(Exception):
    """A failure while observing or acting; `str(error)` names the object and the cause."""

    reason = "OperatorError"


class KubeError(ShellError):
    """A request the API server refused; `status` is the HTTP status code."""

    reason = "KubernetesApiError"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class NotFound(KubeError):
    reason = "NotFound"


class Conflict(KubeError):
    """409: a resourceVersion precondition failed or an apply conflicted."""

    reason = "Conflict"


class Forbidden(KubeError):
    reason = "Forbidden"


class Invalid(KubeError):
    reason = "Invalid"


class Throttled(KubeError):
    reason = "Throttled"


class ServerError(KubeError):
    reason = "KubernetesServerError"


class KubeUnreachable(ShellError):
    """The API server did not answer (timeout, refused or reset connection)."""

    reason = "KubernetesUnreachable"


_BY_STATUS: dict[int, type[KubeError]] = {
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: Throttled,
}


def kube_error(status: int, message: str) -> KubeError:
    """The KubeError subclass for an HTTP status."""
    if status >= 500:
        return ServerError(status, message)
    return _BY_STATUS.get(status, KubeError)(status, message)
