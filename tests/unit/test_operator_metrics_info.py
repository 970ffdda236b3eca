"""The operator's `_info` series: model versions only there, never on other series."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelrollout import metrics


def scrape() -> dict[str, list[dict[str, str]]]:
    text = generate_latest(REGISTRY).decode()
    return {
        family.name: [dict(s.labels, value=str(s.value)) for s in family.samples]
        for family in text_string_to_metric_families(text)
        if family.name.startswith("modelrollout_")
    }


def test_info_series_carries_versions_and_leaves_with_the_object() -> None:
    metrics.remember_object(
        "ml", "fraud", "Progressing", 25,
        model="fraud-detector", version="7", stable_revision="5d8f7c", canary_revision="9b1e22",
    )  # fmt: skip
    try:
        families = scrape()
        info = [s for s in families["modelrollout_modeldeployment_info"] if s["name"] == "fraud"]
        assert info == [
            {
                "namespace": "ml",
                "name": "fraud",
                "model": "fraud-detector",
                "version": "7",
                "stable_revision": "5d8f7c",
                "canary_revision": "9b1e22",
                "value": "1.0",
            }
        ]
        # Versions and revisions stay off every other series.
        for family, samples in families.items():
            if family != "modelrollout_modeldeployment_info":
                for sample in samples:
                    assert not {"version", "stable_revision", "canary_revision"} & set(sample)
    finally:
        metrics.forget("ml", "fraud")
    after = scrape().get("modelrollout_modeldeployment_info", [])
    assert [s for s in after if s["name"] == "fraud"] == []


def test_record_without_info_keeps_the_positional_form() -> None:
    metrics.remember_object("ml", "plain", "Healthy", 0)
    try:
        info = [s for s in scrape()["modelrollout_modeldeployment_info"] if s["name"] == "plain"]
        assert info and info[0]["version"] == "" and info[0]["stable_revision"] == ""
    finally:
        metrics.forget("ml", "plain")


def test_monitoring_verdict_and_breaches_per_object() -> None:
    metrics.remember_object("ml", "watched", "Healthy", 0, monitoring="Breached", breaches=2)
    metrics.remember_object("ml", "waiting", "Healthy", 0, monitoring="NoData")
    metrics.remember_object("ml", "plain", "Healthy", 0)
    try:
        families = scrape()
        healthy = {s["name"]: s["value"] for s in families["modelrollout_model_healthy"]}
        assert healthy == {"watched": "0.0"}  # no data is not a verdict
        breaches = {s["name"]: s["value"] for s in families["modelrollout_monitoring_breaches"]}
        assert breaches == {"watched": "2.0", "waiting": "0.0"}
    finally:
        for name in ("watched", "waiting", "plain"):
            metrics.forget("ml", name)
