"""Operator at scale on the real control plane (kwok nodes): N ModelDeployments created at once.

Measures, per N:
- time from creating all N (one `kubectl apply` of a List) until all N report phase Healthy;
- the operator's RSS after that, and its CPU seconds per minute at idle;
- API requests per minute at idle, from the API server's own `apiserver_request_total`:
  the counters are per verb and resource, not per user agent, so the operator's share is the
  difference between an idle window with the operator running and the same window after it
  stopped (everything else in the cluster idles alike). The reconciler's own client counts its
  requests too (`modelrollout_kube_requests_total`, user agent "modelrollout-operator").

    python benchmarks/operator_scale.py --n 100 --n 1000 --results benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelrollout.kube import MODELDEPLOYMENTS, Kube, make_api_client  # noqa: E402
from tests.integration.operator_process import terminate  # noqa: E402
from tests.testenv.controlplane import ControlPlane, free_port  # noqa: E402

CRD = REPO / "manifests" / "crds" / "modelrollout.io_modeldeployments.yaml"
OPERATOR = Path(sys.executable).parent / "modelrollout-operator"
NAMESPACE = "bench"
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} ([0-9.e+-]+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def model_deployment(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"md-{i:04d}", "namespace": NAMESPACE},
        "spec": {
            "model": {
                "name": "bench",
                "version": "1",
                "uri": "https://models.example/bench/1/model.skops",
                "format": "skops",
            },
            "replicas": 1,
            # The first revision of a new ModelDeployment is deployed without steps.
            "strategy": {"canary": {"steps": [{"setWeight": 100}]}},
        },
    }


def apiserver_requests(kube: Kube) -> Counter[tuple[str, str]]:
    """apiserver_request_total summed by (verb, resource), read from /metrics as admin."""
    return Counter({k: int(v) for k, v in apiserver_sums(kube, "apiserver_request_total").items()})


def apiserver_sums(kube: Kube, metric: str) -> defaultdict[tuple[str, str], float]:
    """A counter of the API server's own /metrics summed by (verb, resource[/subresource])."""
    response = kube.api.call_api(
        *kube.api.param_serialize(
            method="GET",
            resource_path="/metrics",
            header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"],
        )
    )
    text = response.read().decode()
    totals: defaultdict[tuple[str, str], float] = defaultdict(float)
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group(2)))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        totals[labels.get("verb", ""), resource] += float(match.group(3))
    return totals


def own_requests(metrics_port: int) -> float:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("modelrollout_kube_requests_total{")
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def healthy_count(kube: Kube) -> int:
    items = kube.request("GET", MODELDEPLOYMENTS.path(NAMESPACE)).get("items", [])
    return sum(1 for item in items if (item.get("status") or {}).get("phase") == "Healthy")


def delta(after: Counter[tuple[str, str]], before: Counter[tuple[str, str]]) -> Counter[Any]:
    out: Counter[tuple[str, str]] = Counter()
    for key in set(after) | set(before):
        out[key] = after[key] - before[key]
    return out


DURATION_SUM = "apiserver_request_duration_seconds_sum"


def busiest_requests(
    counts: Counter[tuple[str, str]],
    seconds_after: dict[tuple[str, str], float],
    seconds_before: dict[tuple[str, str], float],
    top: int = 8,
) -> list[str]:
    """Where the API server spent its time while the ModelDeployments rolled out."""
    spent = {
        k: seconds_after[k] - seconds_before.get(k, 0.0)
        for k in seconds_after
        if k[0] != "WATCH" and counts[k] > 0  # a watch's "latency" is how long it stayed open
    }
    ranked = sorted(spent.items(), key=lambda kv: -kv[1])[:top]
    return [
        f"{verb} {res}: {counts[verb, res]} requests, {total:.0f} s "
        f"({total / counts[verb, res]:.2f} s each)"
        for (verb, res), total in ranked
    ]


def idle_window(kube: Kube, seconds: float) -> Counter[tuple[str, str]]:
    before = apiserver_requests(kube)
    time.sleep(seconds)
    return delta(apiserver_requests(kube), before)


def run(
    n: int, idle_seconds: float, timeout: float, workdir: Path, client_qps: int | None
) -> dict[str, Any]:
    nodes = n // 100 + 2  # kwok nodes allow 110 pods each
    with ControlPlane(workdir / f"cp-{n}", nodes=nodes, client_qps=client_qps) as cp:
        cp.kubectl("apply", "--server-side", "-f", str(CRD))
        cp.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            "crd/modeldeployments.modelrollout.io",
        )  # fmt: skip
        cp.create_namespace(NAMESPACE)
        kube = Kube(make_api_client(str(cp.kubeconfig)))
        metrics_port = free_port()
        log_path = workdir / f"operator-{n}.log"
        env = dict(os.environ, KUBECONFIG=str(cp.kubeconfig))
        with log_path.open("wb") as log:
            operator = subprocess.Popen(
                [str(OPERATOR), "--namespace", NAMESPACE, "--standalone",
                 "--metrics-port", str(metrics_port), "--metrics-address", "127.0.0.1"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            time.sleep(3)  # the operator's watches are up
            counts0 = apiserver_requests(kube)
            seconds0 = apiserver_sums(kube, DURATION_SUM)
            started = time.monotonic()
            # Sixteen parallel creates, as a CI pipeline or Argo CD sync would send them.
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(
                    pool.map(
                        lambda i: kube.create(MODELDEPLOYMENTS, NAMESPACE, model_deployment(i)),
                        range(n),
                    )
                )
            created = time.monotonic() - started
            healthy = 0
            while healthy < n and time.monotonic() - started < timeout:
                # A LIST of 1,000 statuses is not free for the API server: not too often.
                time.sleep(2.0)
                healthy = healthy_count(kube)
            to_healthy = time.monotonic() - started
            busiest = busiest_requests(
                delta(apiserver_requests(kube), counts0),
                apiserver_sums(kube, DURATION_SUM),
                seconds0,
            )
            time.sleep(10)  # let the last status writes and Deployment updates settle
            rss = rss_mib(operator.pid)
            cpu0, own0 = cpu_seconds(operator.pid), own_requests(metrics_port)
            with_operator = idle_window(kube, idle_seconds)
            cpu = cpu_seconds(operator.pid) - cpu0
            own = own_requests(metrics_port) - own0
        finally:
            terminate(operator, grace=60)
        without_operator = idle_window(kube, idle_seconds)
        kube.api.close()
    per_minute = 60 / idle_seconds
    attributable = delta(with_operator, without_operator)
    top = sorted(((k, v) for k, v in attributable.items() if v), key=lambda kv: -abs(kv[1]))[:6]
    return {
        "n": n,
        "nodes": nodes,
        "client_qps": client_qps,
        "created_s": created,
        "to_healthy_after_created_s": to_healthy - created,
        "healthy": healthy,
        "to_healthy_s": to_healthy,
        "rss_mib": rss,
        "idle_cpu_s_per_min": cpu * per_minute,
        "idle_requests_per_min_with": sum(with_operator.values()) * per_minute,
        "idle_requests_per_min_without": sum(without_operator.values()) * per_minute,
        "idle_requests_per_min_operator": sum(attributable.values()) * per_minute,
        "idle_own_client_requests_per_min": own * per_minute,
        "top_differences": [f"{verb} {res}: {v * per_minute:+.0f}/min" for (verb, res), v in top],
        "busiest_while_rolling_out": busiest,
    }


def section(results: list[dict[str, Any]], idle_seconds: float, client_qps: int | None) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    rate = (
        "their defaults (20 and 50 requests/s)"
        if client_qps is None
        else f"{client_qps} requests/s (as kwokctl's disableQPSLimits raises it for scale runs)"
    )
    lines = [
        "## Operator at scale: N ModelDeployments on kwok nodes",
        "",
        f"### {now}",
        "",
        "Command: `make bench-operator`  ",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}; real etcd + kube-apiserver + controller-manager + "
        f"scheduler + kwok (tests/testenv); one replica per ModelDeployment; idle windows of "
        f"{idle_seconds:.0f} s. Load average at the end: {load:.1f} (shared machine). "
        f"Controller-manager and scheduler client rate: {rate}.",
        "",
        "| N | created in (s) | all Healthy after (s) | Healthy | operator RSS (MiB) "
        "| idle CPU (s/min) "
        "| idle API req/min, operator's share | reconciler client req/min at idle |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']} | {r['created_s']:.1f} | {r['to_healthy_s']:.1f} "
            f"| {r['healthy']}/{r['n']} "
            f"| {r['rss_mib']:.0f} | {r['idle_cpu_s_per_min']:.2f} "
            f"| {r['idle_requests_per_min_operator']:.0f} "
            f"(with {r['idle_requests_per_min_with']:.0f}, "
            f"without {r['idle_requests_per_min_without']:.0f}) "
            f"| {r['idle_own_client_requests_per_min']:.0f} |"
        )
    lines += [
        "",
        "Times count from the first create (16 parallel creates through the API). "
        "Targets (issue 4): 1,000 objects under 300 MiB RSS; at idle only watches (no periodic "
        "list or get per object); all Healthy within 60 s. The operator's share of idle requests "
        "is the difference between a window with it running and one after it stopped; "
        "`apiserver_request_total` has no user-agent label, so the difference also carries the "
        "noise of the other components (leases, node heartbeats). Largest differences by verb "
        "and resource:",
        "",
    ]
    for r in results:
        lines.append(f"- N={r['n']}: " + ("; ".join(r["top_differences"]) or "none"))
    lines += ["", "API server time while rolling out (request count and summed latency):", ""]
    for r in results:
        lines.append(f"- N={r['n']}: " + "; ".join(r["busiest_while_rolling_out"]))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, action="append", help="ModelDeployments (repeatable)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting after")
    parser.add_argument("--results", type=Path, help="append a section to this Markdown file")
    parser.add_argument(
        "--controller-qps",
        type=int,
        help="API client rate of the controller-manager and scheduler (default: theirs)",
    )
    args = parser.parse_args()
    results = []
    # Logs (operator, control plane) stay in benchmarks/out/ (ignored by git).
    workdir = REPO / "benchmarks" / "out" / f"operator-{int(time.time())}"
    workdir.mkdir(parents=True)
    for n in args.n or [100, 1000]:
        result = run(n, args.idle_seconds, args.timeout, workdir, args.controller_qps)
        print(json.dumps(result, indent=2), flush=True)
        results.append(result)
    text = section(results, args.idle_seconds, args.controller_qps)
    print(text)
    if args.results:
        with args.results.open("a") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()
