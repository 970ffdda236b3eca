"""Manual controls: tokens, refusals and undo targets (pure functions of the object)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from modelrollout.cli import controls
from modelrollout.cli.app import build_parser
from modelrollout.cli.kubeapi import Connection, ModelDeployments, _explain
from tests.unit.control_fields import CONTROL_FIELDS


def obj(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "fraud"}, "spec": {"model": {}}, "status": status}


def test_token_is_new_each_time_and_fits_the_api_limit() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
    a = controls.request_token(now, "a" * 32)
    b = controls.request_token(now, "b" * 32)
    assert a != b
    assert len(a) <= 64
    assert a.startswith("kubectl-20261123T120000.123456Z-")


@pytest.mark.parametrize(("action", "field"), CONTROL_FIELDS)
def test_control_patches_touch_only_their_status_field(action: str, field: str) -> None:
    assert controls.control_patch(action, "t1") == {"status": {field: "t1"}}


def test_promote_and_abort_need_a_rollout_in_flight() -> None:
    healthy = obj(phase="Healthy", stableRevision="a")
    running = obj(phase="Paused", stableRevision="a", canaryRevision="b")
    for action in ("promote", "promote-full", "abort"):
        assert controls.refusal(action, running) is None
        reason = controls.refusal(action, healthy)
        assert reason is not None
        assert "no rollout in progress" in reason


def test_retry_only_after_a_rollback() -> None:
    rolled_back = obj(phase="Degraded", stableRevision="a", canaryRevision="b", abortedRevision="b")
    assert controls.refusal("retry", rolled_back) is None
    assert controls.refusal("retry", obj(phase="Healthy")) is not None
    # Degraded without an abort (a first revision past its progress deadline): the operator
    # would ignore the retry, so the plugin says so.
    stuck = obj(phase="Degraded", canaryRevision="b")
    assert controls.refusal("retry", stuck) is not None


def test_abort_needs_a_stable_to_return_to() -> None:
    first = obj(phase="Progressing", canaryRevision="a")
    assert controls.refusal("abort", first) == "abort: there is no stable revision to return to"
    assert controls.refusal("promote", first) is None


HISTORY = [
    {"revision": "ccc", "modelVersion": "3", "outcome": "Promoted", "at": "2026-11-23T00:00:00Z"},
    {"revision": "xxx", "modelVersion": "x", "outcome": "RolledBack", "at": "2026-11-22T00:00:00Z"},
    {"revision": "bbb", "modelVersion": "2", "outcome": "Promoted", "at": "2026-11-21T00:00:00Z"},
    {"revision": "aaa", "modelVersion": "1", "outcome": "Promoted", "at": "2026-11-20T00:00:00Z"},
]


def test_history_is_numbered_from_the_oldest() -> None:
    rows = controls.history_rows({"history": HISTORY})
    assert [(r.number, r.revision) for r in rows] == [
        (1, "aaa"),
        (2, "bbb"),
        (3, "xxx"),
        (4, "ccc"),
    ]


def test_undo_defaults_to_previous_stable() -> None:
    o = obj(stableRevision="ccc", previousStableRevision="bbb", history=HISTORY)
    assert controls.undo_target(o, None) == "bbb"


def test_undo_without_previous_stable_uses_the_last_other_promoted_entry() -> None:
    o = obj(stableRevision="ccc", history=HISTORY)
    assert controls.undo_target(o, None) == "bbb"


def test_undo_to_history_number_or_hash() -> None:
    o = obj(stableRevision="ccc", history=HISTORY)
    assert controls.undo_target(o, "1") == "aaa"
    assert controls.undo_target(o, "0123abcd45") == "0123abcd45"
    with pytest.raises(ValueError, match="no history entry 9"):
        controls.undo_target(o, "9")


def test_undo_with_no_history_explains() -> None:
    with pytest.raises(ValueError, match="no earlier promoted revision"):
        controls.undo_target(obj(stableRevision="ccc"), None)


def deployment(env: dict[str, str]) -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar"},
                        {
                            "name": "server",
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        },
                    ]
                }
            }
        }
    }


def test_model_is_read_back_from_the_revision_environment() -> None:
    dep = deployment(
        {
            "MODELROLLOUT_NAME": "fraud-detector",
            "MODELROLLOUT_VERSION": "2",
            "MODELROLLOUT_URI": "file:///models/2.skops",
            "MODELROLLOUT_FORMAT": "skops",
            "MODELROLLOUT_SHA256": "",
            "MODELROLLOUT_TRUSTED_TYPES": "sklearn.tree._tree.Tree,numpy.dtype",
            "MODELROLLOUT_ALLOW_PICKLE": "false",
            "MODELROLLOUT_PORT": "8080",
        }
    )
    assert controls.model_from_deployment(dep) == {
        "name": "fraud-detector",
        "version": "2",
        "uri": "file:///models/2.skops",
        "format": "skops",
        "trustedTypes": ["sklearn.tree._tree.Tree", "numpy.dtype"],
    }
    with pytest.raises(ValueError, match="no model-server container"):
        controls.model_from_deployment(deployment({}))


def test_model_patch_removes_keys_the_old_model_did_not_have() -> None:
    current = {"name": "m", "version": "3", "uri": "u3", "format": "skops", "sha256": "ab"}
    target = {"name": "m", "version": "2", "uri": "u2", "format": "skops"}
    assert controls.model_patch(current, target) == {
        "spec": {
            "model": {"name": "m", "version": "2", "uri": "u2", "format": "skops", "sha256": None}
        }
    }


def test_parser_takes_kubectl_style_flags() -> None:
    args = build_parser().parse_args(["undo", "fraud", "-n", "ml", "--to-revision", "2"])
    assert (args.command, args.name, args.namespace, args.to_revision) == (
        "undo",
        "fraud",
        "ml",
        "2",
    )
    args = build_parser().parse_args(["promote", "--full", "fraud", "--kubeconfig", "/k"])
    assert (args.full, args.kubeconfig) == (True, "/k")
    args = build_parser().parse_args(["list", "-A"])
    assert args.all_namespaces


def test_model_snapshot_from_history_wins() -> None:
    model = {"name": "m", "version": "2", "uri": "u2", "format": "skops"}
    status = {"history": [{**HISTORY[2], "model": model}, HISTORY[3]]}
    assert controls.model_from_history(status, "bbb") == model
    assert controls.model_from_history(status, "aaa") is None


def test_namespace_follows_kubectl_resolution(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "ml", "context": {"cluster": "c", "user": "u", "namespace": "ml"}},
            {"name": "bare", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "ml",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    assert ModelDeployments(Connection(str(path), None, None)).namespace == "ml"
    assert ModelDeployments(Connection(str(path), "bare", None)).namespace == "default"
    assert ModelDeployments(Connection(str(path), None, "team")).namespace == "team"


def test_api_errors_become_one_readable_line() -> None:
    missing = ApiException(status=404, reason="Not Found")
    missing.body = (
        '{"kind":"Status","message":"modeldeployments.modelrollout.io \\"x\\" not found"}'
    )
    assert (
        _explain(missing, "modeldeployment x", "ml")
        == "modeldeployment x not found in namespace 'ml'"
    )
    no_crd = ApiException(status=404, reason="Not Found")
    no_crd.body = '{"kind":"Status","message":"the server could not find the requested resource"}'
    assert "CRD not installed" in _explain(no_crd, "modeldeployments", "ml")
    denied = ApiException(status=403, reason="Forbidden")
    denied.body = '{"message":"user cannot patch"}'
    assert _explain(denied, "modeldeployment x", "ml") == (
        "forbidden: modeldeployment x in namespace 'ml': user cannot patch"
    )
