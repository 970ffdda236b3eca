"""Prometheus without the Prometheus Operator, on the real node: Prometheus finds the
model-server pods itself (`kubernetes_sd_configs`, role pod) with the scrape configuration
docs/prometheus-scrape.yaml documents (the chart's PodMonitor relabelling: the pod's namespace
and its `modelrollout.io/name` label become `namespace` and `name`; the server sets `revision`).
The operator pod queries it, and an analysis on those series rolls back a candidate whose pods
answer half of their inference requests with 500, under live load through the `<name>` Service.
Without the relabelling the analysis would find no data: the rollout would pause, not roll back.
Prometheus is upstream's, built from Go modules with Kubernetes discovery (tests/node/discovery.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.e2e.prometheus import PrometheusProcess
from tests.integration.helm_chart import Release, restricted_namespace
from tests.integration.operator_process import get_md, phase_is
from tests.node.workload import (
    Load,
    apply,
    cluster_ip,
    failing,
    model_deployment,
    model_files,
    serve_models,
    server_pods,
    versions_served,
    wait_proxied,
)
from tests.testenv.controlplane import ControlPlane
from tests.testenv.images import ImageArchives
from tests.testenv.node import RealNode
from tests.testenv.waiting import eventually

NAME = "scored"
POD_SUBNET = ipaddress.ip_network("10.245.0.0/24")
ERROR_RATE = 0.5  # injected into the candidate's pods
MAX_ERROR_RATE = 0.05
METRIC = {"name": "error-rate", "builtin": "errorRate", "max": MAX_ERROR_RATE, "window": "10s"}
# 50 %, a pause so that the candidate's traffic fills a rate() window, the analysis, then a
# pause for a person: a candidate that passed would stop there, never reach Degraded.
STEPS = [{"setWeight": 50}, {"pause": {"duration": "5s"}}, {"analysis": {}}, {"pause": {}}]
AFTER_ROLLBACK = 100  # requests that must all be answered by v1


def discovered_series(prom: PrometheusProcess, ns: str) -> list[dict[str, Any]]:
    """Every model_infer_request_failure_total series of the ModelDeployment seen in the last
    hour (pods that are gone included), with its last value."""
    return prom.instant(
        f'last_over_time(model_infer_request_failure_total{{namespace="{ns}",name="{NAME}"}}[1h])'
    )


def only_stable_served(
    node: RealNode, cp: ControlPlane, ns: str, stable: str, replicas: int
) -> bool:
    """The candidate's pods are gone and kube-proxy balances over the stable's alone."""
    revisions = [p["metadata"]["labels"].get("modelrollout.io/revision")
                 for p in server_pods(cp, ns, NAME)]  # fmt: skip
    return revisions == [stable] * replicas and node.proxied_endpoints(ns, NAME, "http") == replicas


def test_prometheus_discovers_the_pods_and_its_series_roll_a_faulty_candidate_back(
    real_node: RealNode,
    release: Release,
    images: ImageArchives,
    discovering: PrometheusProcess,
    tmp_path: Path,
) -> None:
    cp, ns, prom = real_node.cp, release.apps, discovering
    # The model files from a namespace of their own (another test's file server may hold other
    # bytes under the same names in the apps namespace).
    files_ns = f"{ns}-{NAME}-files"
    restricted_namespace(cp, files_ns)
    files = model_files(tmp_path)
    base = serve_models(cp, files_ns, images.server_image, files)
    digest = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}

    assert prom.scrape_configs is not None
    job = prom.scrape_configs[0]["job_name"]
    try:
        analysis = {
            "interval": "5s",
            "count": 3,
            "prometheus": {"address": prom.url, "timeout": "5s"},
            "metrics": [METRIC],
            "minSamples": 20,
            # A thin first window on a loaded machine is tolerated, twice (no data never
            # passes: a candidate measured on nothing would pause, not roll back).
            "inconclusiveLimit": 2,
        }
        spec = {"strategy": {"canary": {"steps": STEPS}}, "analysis": analysis}
        apply(cp, ns, model_deployment(NAME, "1", f"{base}/v1.skops", digest["v1.skops"], **spec))
        healthy = eventually(phase_is(cp, ns, NAME, "Healthy"), "v1 Healthy", timeout=300)
        stable = healthy["status"]["stableRevision"]
        wait_proxied(real_node, ns, NAME, healthy["status"])
        address = cluster_ip(cp, ns, NAME)
        assert versions_served(address, NAME, 20) == Counter({"1": 20})

        # Discovered, not configured: both v1 pods, labelled from the pod by the relabelling.
        query = f'model_infer_request_success_total{{namespace="{ns}",name="{NAME}"}}'
        found = prom.wait_for(query, timeout=60, min_series=2)
        assert len(found) == 2, found
        for one in found:
            labels = one["metric"]
            assert labels["revision"] == stable and labels["job"] == job, labels
            host, _, port = labels["instance"].rpartition(":")
            assert ipaddress.ip_address(host) in POD_SUBNET and port == "8080", labels

        faulty = model_deployment(NAME, "2", f"{base}/v2.skops", digest["v2.skops"],
                          template=failing(ERROR_RATE), **spec)  # fmt: skip
        with Load(address, NAME) as load:
            eventually(lambda: load.counts().total() >= 20, "load through the Service", 60)
            started = time.monotonic()
            apply(cp, ns, faulty)
            degraded = eventually(phase_is(cp, ns, NAME, "Degraded"), "a rollback", timeout=420)
            to_rollback = time.monotonic() - started
            during = load.counts()
            eventually(lambda: only_stable_served(real_node, cp, ns, stable, 2),
                       "the candidate's pods gone, the stable's alone proxied", 180)  # fmt: skip
        total = load.counts()

        st = degraded["status"]
        assert st["stableRevision"] == stable, st
        candidate = st["abortedRevision"]
        assert candidate not in (None, stable), st
        degraded_condition = next(c for c in st["conditions"] if c["type"] == "Degraded")
        assert degraded_condition["status"] == "True", st["conditions"]
        assert degraded_condition["reason"] == "AnalysisFailed", st["conditions"]
        assert "metric error-rate value" in st["message"], st["message"]
        assert st["history"][0]["outcome"] == "RolledBack", st["history"]
        assert st["history"][0]["revision"] == candidate, st["history"]
        assert st["history"][0]["modelVersion"] == "2", st["history"]
        assert st["analysis"]["phase"] == "Failed" and st["analysis"]["revision"] == candidate
        failed = [r for r in st["analysis"]["results"] if r["verdict"] == "Failed"]
        assert failed and all(r["metric"] == "error-rate" for r in failed), st["analysis"]
        measured = failed[-1]["value"]
        # What the candidate's pods did, as Prometheus saw them through discovery.
        assert measured > MAX_ERROR_RATE and abs(measured - ERROR_RATE) < 0.2, failed

        # Both revisions' pods were scraped, each series labelled by discovery; the failures
        # are the candidate's alone.
        series = discovered_series(prom, ns)
        failures: Counter[str] = Counter()
        for one in series:
            labels = one["metric"]
            assert labels["namespace"] == ns and labels["name"] == NAME, labels
            assert labels["job"] == job, labels
            failures[labels["revision"]] += int(float(one["value"][1]))
        assert set(failures) == {stable, candidate}, series
        assert failures[stable] == 0 and failures[candidate] > 0, failures

        # The load went through the Service to both revisions, and met the candidate's faults.
        assert during["200 v1"] > 0 and during["200 v2"] > 0 and during["500"] > 0, during
        # Rolled back: every request through the Service answers 200 from v1.
        assert versions_served(address, NAME, AFTER_ROLLBACK) == Counter({"1": AFTER_ROLLBACK})
        final = get_md(cp, ns, NAME)["status"]
        assert final["phase"] == "Degraded" and final["stableRevision"] == stable, final
        print(
            f"rolled back {to_rollback:.1f}s after v2 was applied; load until Degraded "
            f"{dict(during)}, until only v1 was proxied {dict(total)}; Prometheus: error rate "
            f"{measured:.3f}, failures by revision {dict(failures)}; {st['message']}"
        )
    finally:
        cp.kubectl("delete", "modeldeployment", NAME, "-n", ns, "--wait=false", check=False)
        cp.kubectl("delete", "namespace", files_ns, "--wait=false", check=False)
