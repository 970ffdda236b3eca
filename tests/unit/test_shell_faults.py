"""Failures while observing or acting become part of the observation: the rollout holds, the
status and one Warning event say why, nothing moves, and it resumes by itself (no cluster)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from kubernetes import client

from modelrollout.analysis.hook import SecretNotFound, _secret_reader
from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisSpec, Verdict
from modelrollout.core.hold import FAULT_RECHECK_SECONDS
from modelrollout.kube import DEPLOYMENTS, HTTPROUTES, MODELDEPLOYMENTS, ResourceKind
from modelrollout.kube.errors import Forbidden, KubeUnreachable, ServerError, Throttled, kube_error
from modelrollout.kube.rest import Kube
from modelrollout.shell import Shell, reconcile_sync
from tests.unit.fake_kube import FakeKube, model, model_deployment

NS, NAME, ROUTE = "ml", "fraud", "fraud-route"
SECRETS = ResourceKind("", "v1", "Secret", "secrets")
STEPS = [{"setWeight": 30}, {"pause": {}}]


def route() -> dict[str, Any]:
    backends = [{"name": f"{NAME}-stable", "port": 8080, "weight": 100}]
    return {
        "apiVersion": HTTPROUTES.api_version,
        "kind": HTTPROUTES.kind,
        "metadata": {"name": ROUTE, "namespace": NS},
        "spec": {"rules": [{"backendRefs": backends}]},
    }


def gateway_md(version: str) -> dict[str, Any]:
    md = model_deployment(version, STEPS)
    md["spec"]["strategy"]["canary"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": ROUTE}}
    return md


def status(kube: FakeKube) -> dict[str, Any]:
    md = kube.stored(MODELDEPLOYMENTS, NS, NAME)
    assert md is not None
    result: dict[str, Any] = md.get("status") or {}
    return result


def condition(kube: FakeKube, type_: str) -> dict[str, Any]:
    return next(c for c in status(kube)["conditions"] if c["type"] == type_)


def warnings(kube: FakeKube) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in kube.events() if e["type"] == "Warning"]


def weights(kube: FakeKube) -> dict[str, int]:
    stored = kube.stored(HTTPROUTES, NS, ROUTE)
    assert stored is not None
    refs = stored["spec"]["rules"][0]["backendRefs"]
    return {ref["name"]: ref["weight"] for ref in refs}


def healthy_on_the_gateway() -> tuple[FakeKube, Shell, str]:
    kube = FakeKube()
    kube.add(HTTPROUTES, route())
    kube.add(MODELDEPLOYMENTS, gateway_md("1"))
    shell = Shell(kube, server_image="server:test")
    reconcile_sync(shell, NS, NAME)
    kube.make_ready(NS)
    reconcile_sync(shell, NS, NAME)
    assert status(kube)["phase"] == "Healthy"
    return kube, shell, status(kube)["stableRevision"]


def start_v2(kube: FakeKube, shell: Shell) -> None:
    kube.edit(MODELDEPLOYMENTS, NS, NAME, lambda md: md["spec"].update(model=model("2")))
    reconcile_sync(shell, NS, NAME)
    kube.make_ready(NS)


def test_a_missing_route_holds_the_rollout_names_it_once_and_resumes_when_it_is_back() -> None:
    kube, shell, stable = healthy_on_the_gateway()
    kube.remove(HTTPROUTES, NS, ROUTE)
    start_v2(kube, shell)
    assert reconcile_sync(shell, NS, NAME) == FAULT_RECHECK_SECONDS
    held = status(kube)
    assert held["phase"] == "Paused"
    assert held["pauseReason"] == "Fault"
    assert f"HTTPRoute {NS}/{ROUTE} not found" in held["message"]
    assert condition(kube, "Progressing")["reason"] == "TrafficRoutingError"
    assert held["stableRevision"] == stable
    assert held.get("canaryWeight", 0) == 0  # the status claims no weight the router lacks
    stable_deployment = kube.stored(DEPLOYMENTS, NS, f"{NAME}-{stable}")
    assert stable_deployment is not None and stable_deployment["spec"]["replicas"] == 4
    # Retries say nothing new: one Warning event per cause.
    for _ in range(3):
        reconcile_sync(shell, NS, NAME)
    assert [reason for reason, _ in warnings(kube)] == ["TrafficRoutingError"]
    assert f"HTTPRoute {NS}/{ROUTE}" in warnings(kube)[0][1]
    # The route is back: the rollout goes on by itself, to its first weight.
    kube.add(HTTPROUTES, route())
    reconcile_sync(shell, NS, NAME)
    reconcile_sync(shell, NS, NAME)
    assert status(kube).get("pauseReason") != "Fault"
    assert weights(kube) == {f"{NAME}-stable": 70, f"{NAME}-canary": 30}
    assert condition(kube, "Progressing")["reason"] != "TrafficRoutingError"


def test_a_route_that_does_not_reference_our_services_names_the_route() -> None:
    kube, shell, _ = healthy_on_the_gateway()
    kube.edit(
        HTTPROUTES,
        NS,
        ROUTE,
        lambda r: r["spec"].update(rules=[{"backendRefs": [{"name": "other", "port": 80}]}]),
    )
    start_v2(kube, shell)
    reconcile_sync(shell, NS, NAME)
    assert status(kube)["pauseReason"] == "Fault"
    assert status(kube)["message"].startswith(f"HTTPRoute {NS}/{ROUTE}: ")
    assert "neither" in status(kube)["message"]


def test_a_promote_sent_during_a_fault_stays_pending_and_acts_afterwards() -> None:
    kube, shell, _ = healthy_on_the_gateway()
    start_v2(kube, shell)
    reconcile_sync(shell, NS, NAME)  # writes 30 %
    reconcile_sync(shell, NS, NAME)  # reads it back: the step is complete
    assert status(kube)["phase"] == "Paused" and status(kube)["currentStepIndex"] == 1
    assert status(kube)["canaryWeight"] == 30
    kube.remove(HTTPROUTES, NS, ROUTE)
    kube.edit(MODELDEPLOYMENTS, NS, NAME, lambda md: md.setdefault("status", {}))
    kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, {"status": {"promote": "t1"}}, "status")
    reconcile_sync(shell, NS, NAME)  # the router cannot be read back: held, promote unused
    assert status(kube)["pauseReason"] == "Fault"
    assert status(kube).get("handledRequests", {}).get("promote") != "t1"
    kube.add(HTTPROUTES, route())
    for _ in range(4):
        reconcile_sync(shell, NS, NAME)
        kube.make_ready(NS)
    assert status(kube)["handledRequests"]["promote"] == "t1"
    assert status(kube)["phase"] == "Healthy"


@pytest.mark.parametrize(
    "error",
    [
        Forbidden(403, 'deployments.apps "x" is forbidden: User "op" cannot patch'),
        Throttled(429, "too many requests"),
        ServerError(500, "etcdserver: request timed out"),
        KubeUnreachable("GET /apis/apps/v1/namespaces/ml/deployments: timed out"),
    ],
)
def test_an_api_error_while_observing_holds_and_names_its_cause(error: Exception) -> None:
    kube, shell, stable = healthy_on_the_gateway()
    start_v2(kube, shell)
    kube.fail_next("list", DEPLOYMENTS, error)
    reconcile_sync(shell, NS, NAME)
    assert status(kube)["pauseReason"] == "Fault"
    assert str(error) in status(kube)["message"]
    assert condition(kube, "Progressing")["reason"] == getattr(error, "reason", "")
    assert status(kube)["stableRevision"] == stable
    reconcile_sync(shell, NS, NAME)  # one failure only: it goes on
    assert status(kube).get("pauseReason") != "Fault"


def test_api_errors_map_to_their_reasons() -> None:
    reasons = {s: kube_error(s, "m").reason for s in (400, 403, 404, 409, 422, 429, 500, 503)}
    assert reasons == {
        400: "KubernetesApiError",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        422: "Invalid",
        429: "Throttled",
        500: "KubernetesServerError",
        503: "KubernetesServerError",
    }


def test_the_client_turns_an_unreachable_api_server_into_a_shell_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nobody listens on
        configuration = client.Configuration()
        configuration.host = f"https://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(KubeUnreachable, match="Connection refused"):
            Kube(client.ApiClient(configuration)).get(DEPLOYMENTS, NS, "x")


# -- credentials for Prometheus -----------------------------------------------------------------


def read_secret(kube: FakeKube, name: str, key: str) -> str:
    return asyncio.run(_secret_reader(kube)(NS, name, key))


def test_a_missing_secret_or_key_is_a_metric_source_error_naming_it() -> None:
    kube = FakeKube(kinds=(*FakeKube().kinds.values(), SECRETS))
    with pytest.raises(SecretNotFound, match=f"Secret {NS}/prom-auth not found"):
        read_secret(kube, "prom-auth", "token")
    kube.add(SECRETS, {"metadata": {"name": "prom-auth", "namespace": NS}, "data": {}})
    with pytest.raises(SecretNotFound, match=f"Secret {NS}/prom-auth has no key 'token'"):
        read_secret(kube, "prom-auth", "token")
    kube.fail_next("get", SECRETS, Forbidden(403, 'secrets "prom-auth" is forbidden'))
    with pytest.raises(SecretNotFound, match=f"cannot read Secret {NS}/prom-auth: HTTP 403"):
        read_secret(kube, "prom-auth", "token")


def test_a_missing_secret_makes_every_metric_an_error_not_a_crash() -> None:
    kube = FakeKube(kinds=(*FakeKube().kinds.values(), SECRETS))
    spec = AnalysisSpec.model_validate(
        {
            "prometheus": {
                "address": "http://prometheus.invalid:9090",
                "auth": {"bearerTokenSecret": {"name": "prom-auth", "key": "token"}},
            },
            "metrics": [{"name": "errors", "builtin": "errorRate", "max": 0.01}],
        }
    )

    async def measure() -> list[Any]:
        runner = AnalysisRunner(read_secret=_secret_reader(kube))
        try:
            return await runner.measure(spec, NS, NAME, "v2", "v1")
        finally:
            await runner.aclose()

    results = asyncio.run(measure())
    assert [(r.metric, r.verdict) for r in results] == [("errors", Verdict.ERROR)]
    assert results[0].message == f"Secret {NS}/prom-auth not found"
