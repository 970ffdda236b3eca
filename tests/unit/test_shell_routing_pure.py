"""Pure parts of the shell: routing-object rewrites and the status merge patch (no cluster)."""

from __future__ import annotations

import pytest

from modelrollout.kube.status import status_patch
from modelrollout.traffic.base import RoutedObject, RouterError
from modelrollout.traffic.gateway_api import read_weight as route_weight
from modelrollout.traffic.gateway_api import weighted_rules
from modelrollout.traffic.istio import read_weight as vs_weight
from modelrollout.traffic.istio import weighted_http
from modelrollout.traffic.nginx import canary_ingress

TARGET = RoutedObject("fraud", "ml", {"kind": "ModelDeployment", "name": "fraud", "uid": "u"})


def test_status_patch_clears_only_fields_we_saw() -> None:
    old = {"phase": "Paused", "abort": "a1", "message": "x"}
    new = {"phase": "Degraded", "message": "x"}
    assert status_patch(old, new) == {"phase": "Degraded", "abort": None}
    assert status_patch(new, new) == {}


def test_http_route_weights_keep_foreign_backends() -> None:
    rules = [{"backendRefs": [{"name": "fraud-stable", "port": 8080}, {"name": "other"}]}]
    out = weighted_rules(rules, TARGET, 30, 8080)
    assert out[0]["backendRefs"] == [
        {"name": "other"},
        {"name": "fraud-stable", "port": 8080, "weight": 70},
        {"name": "fraud-canary", "port": 8080, "weight": 30},
    ]
    assert rules[0]["backendRefs"][0] == {"name": "fraud-stable", "port": 8080}  # not mutated
    assert route_weight({"spec": {"rules": out}}, TARGET) == 30


def test_http_route_without_our_services_is_an_error() -> None:
    with pytest.raises(RouterError):
        weighted_rules([{"backendRefs": [{"name": "other"}]}], TARGET, 10, 8080)


@pytest.mark.parametrize("weight", [0, 1, 50, 99, 100])
def test_virtual_service_weights_sum_to_100(weight: int) -> None:
    http = [{"route": [{"destination": {"host": "fraud-stable.ml.svc.cluster.local"}}]}]
    out = weighted_http(http, TARGET, weight)
    assert sum(entry["weight"] for entry in out[0]["route"]) == 100
    assert vs_weight({"spec": {"http": out}}, TARGET) == weight


def test_virtual_service_route_names_filter() -> None:
    http = [
        {"name": "a", "route": [{"destination": {"host": "fraud-stable"}}]},
        {"name": "b", "route": [{"destination": {"host": "fraud-stable"}}]},
    ]
    out = weighted_http(http, TARGET, 20, names=("b",))
    assert out[0] == http[0]
    assert [entry["weight"] for entry in out[1]["route"]] == [80, 20]


def test_canary_ingress_points_at_the_canary_service_and_clamps_weight() -> None:
    stable = {
        "metadata": {"name": "web", "annotations": {"keep": "no"}},
        "spec": {
            "rules": [{"http": {"paths": [{"backend": {"service": {"name": "fraud-stable"}}}]}}]
        },
    }
    ingress = canary_ingress(stable, TARGET, 150)
    assert ingress["metadata"]["name"] == "web-canary"
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "100",
    }
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "fraud-canary"
    assert ingress["metadata"]["ownerReferences"] == [TARGET.owner_reference]
