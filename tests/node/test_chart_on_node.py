"""The chart as users install it, on the real node: the operator pod from our image becomes Ready
through its real probes and, acting only as its ServiceAccount, carries a canary to Healthy with
model-server pods from our image that download their model over http:// from a server in the
namespace. The `<name>` Service (ClusterIP, kube-proxy) splits requests between the revisions
in the proportion the status reports. A namespace the release does not watch is left alone."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from tests.integration.helm_chart import Release, restricted_namespace
from tests.integration.operator_process import get_md, phase_is
from tests.node.workload import (
    apply,
    cluster_ip,
    infer,
    model_deployment,
    model_files,
    promote,
    serve_models,
    server_pods,
    versions_served,
    wait_proxied,
)
from tests.testenv.controlplane import ControlPlane
from tests.testenv.images import ImageArchives
from tests.testenv.node import RealNode
from tests.testenv.waiting import eventually

NAME = "fraud"
# Requests at each measured step; the tolerance below is 5 standard deviations of a binomial
# share at 50 %, so a correct split fails it about once in 1.7 million runs.
REQUESTS = 1000
TOLERANCE = 5 * (0.25 / REQUESTS) ** 0.5


def test_the_chart_operator_pod_carries_a_canary_on_real_pods(
    real_node: RealNode, release: Release, images: ImageArchives, tmp_path: Path
) -> None:
    cp, ns = real_node.cp, release.apps
    operator = json.loads(
        cp.kubectl("get", "pods", "-n", release.namespace, "-l",
                   "app.kubernetes.io/component=operator", "-o", "json").stdout
    )["items"]  # fmt: skip
    assert len(operator) == 1
    statuses = operator[0]["status"]["containerStatuses"]
    assert statuses[0]["ready"] and statuses[0]["containerID"].startswith("containerd://")

    files = model_files(tmp_path)
    base = serve_models(cp, ns, images.server_image, files)
    digest = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    first = model_deployment(NAME, "1", f"{base}/v1.skops", digest["v1.skops"])
    apply(cp, ns, first)
    healthy = eventually(phase_is(cp, ns, NAME, "Healthy"), "v1 Healthy", timeout=300)
    stable = healthy["status"]["stableRevision"]
    pods = server_pods(cp, ns, NAME)
    assert len(pods) == 2
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["containerID"].startswith("containerd://"), pod
    wait_proxied(real_node, ns, NAME, healthy["status"])
    assert versions_served(cluster_ip(cp, ns, NAME), NAME, 20) == Counter({"1": 20})

    second = model_deployment(NAME, "2", f"{base}/v2.skops", digest["v2.skops"])
    apply(cp, ns, second)
    paused = eventually(phase_is(cp, ns, NAME, "Paused", currentStepIndex=1), "v2 at 50 %", 300)
    weight = paused["status"]["canaryWeight"] / 100
    assert 0 < weight < 1
    wait_proxied(real_node, ns, NAME, paused["status"])
    seen = versions_served(cluster_ip(cp, ns, NAME), NAME, REQUESTS)
    assert set(seen) == {"1", "2"}
    share = seen["2"] / REQUESTS
    assert abs(share - weight) <= TOLERANCE, (seen, weight)

    promote(cp, ns, NAME)
    done = eventually(phase_is(cp, ns, NAME, "Healthy"), "v2 Healthy", timeout=300)
    assert done["status"]["stableRevision"] not in (stable, None)
    wait_proxied(real_node, ns, NAME, done["status"])
    assert versions_served(cluster_ip(cp, ns, NAME), NAME, 20) == Counter({"2": 20})

    # A candidate whose artifact fails its sha256 never becomes Ready nor takes a request.
    wrong = model_deployment(NAME, "3", f"{base}/v1.skops", digest["v1.skops"][::-1])
    apply(cp, ns, wrong)
    refusal = eventually(lambda: candidate_refusal(cp, ns, done["status"]["stableRevision"]),
                         "the candidate pod refusing to serve", timeout=180)  # fmt: skip
    assert refusal[0] == 503 and "sha256" in refusal[1], refusal
    waiting = get_md(cp, ns, NAME)["status"]
    assert waiting["phase"] == "Progressing" and not waiting.get("canaryReadyReplicas"), waiting
    assert waiting["stableRevision"] == done["status"]["stableRevision"]
    assert versions_served(cluster_ip(cp, ns, NAME), NAME, 50) == Counter({"2": 50})
    print(f"measured split at 50 %: {dict(seen)} (status.canaryWeight {weight:.2f})")


def candidate_refusal(cp: ControlPlane, ns: str, stable: str) -> tuple[int, str] | None:
    """(status, body) of an inference request sent straight to a pod of the candidate, once
    one has finished loading; None before. (The previous stable's pods drain for a while after
    the promotion.)"""
    candidate = (get_md(cp, ns, NAME).get("status") or {}).get("canaryRevision")
    if candidate in (None, stable):
        return None
    for pod in server_pods(cp, ns, NAME):
        labels = pod["metadata"].get("labels", {})
        address = pod["status"].get("podIP")
        if labels.get("modelrollout.io/revision") != candidate or not address:
            continue
        try:
            status, body = infer(address, NAME, timeout=5)
        except OSError:
            return None  # not listening yet
        text = json.dumps(body)
        # The server answers 503 "still loading" while it fetches and checks the artifact.
        return None if "still loading" in text else (status, text)
    return None


def test_a_namespace_the_release_does_not_watch_is_left_alone(
    real_node: RealNode, release: Release
) -> None:
    """watchNamespaces: the same ModelDeployment in a watched and in another namespace; once the
    operator has acted on the first, the second has no status, no finalizer and no children,
    and the operator never tried (no forbidden request in its log)."""
    cp = real_node.cp
    other = f"{release.apps}-unwatched"
    restricted_namespace(cp, other)
    md = model_deployment("isolated", "1", "http://models.invalid/v1.skops", "0" * 64)
    for ns in (release.apps, other):
        apply(cp, ns, md)
    eventually(lambda: cp.kubectl("get", "deployments", "-n", release.apps, "-l",
                                  "modelrollout.io/name=isolated", "-o", "name").stdout.strip(),
               "the operator acting in the watched namespace", timeout=120)  # fmt: skip
    eventually(lambda: get_md(cp, release.apps, "isolated").get("status", {}).get("phase"),
               "a status in the watched namespace", timeout=60)  # fmt: skip
    untouched = get_md(cp, other, "isolated")
    assert "status" not in untouched and not untouched["metadata"].get("finalizers"), untouched
    children = cp.kubectl("get", "deployments,services,configmaps", "-n", other, "-l",
                          "modelrollout.io/name=isolated", "-o", "name").stdout  # fmt: skip
    assert children.strip() == ""
    log = cp.kubectl("logs", "-n", release.namespace, f"deploy/{release.name}-modelrollout").stdout
    assert "forbidden" not in log.lower(), log[-4000:]
    cp.kubectl("delete", "modeldeployment", "isolated", "-n", release.apps, "--wait=true",
               timeout=120)  # fmt: skip
