"""The Dockerfile builds the images the chart runs, with the install procedure CI runs too."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def stages() -> dict[str, str]:
    """Stage name -> its lines (after FROM ... AS name)."""
    text = (REPO / "Dockerfile").read_text()
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_operator_and_server_targets_run_as_numeric_non_root() -> None:
    s = stages()
    assert {"operator", "server"} <= set(s)
    runtime = s["runtime"]
    user = re.search(r"^USER\s+(\d+):(\d+)\s*$", runtime, flags=re.MULTILINE)
    assert user is not None, "USER must be numeric so runAsNonRoot can verify it"
    assert int(user.group(1)) != 0 and int(user.group(2)) != 0
    assert "modelrollout-operator" in s["operator"]
    assert "modelrollout-server" in s["server"]


def test_images_install_with_the_script_ci_runs() -> None:
    assert "bash scripts/docker-install.sh" in stages()["base"]
    assert "scripts/docker-install.sh" in (REPO / ".ci" / "run").read_text()


def test_chart_points_at_the_images_the_dockerfile_builds() -> None:
    header = (REPO / "Dockerfile").read_text()
    values = yaml.safe_load((REPO / "charts" / "modelrollout" / "values.yaml").read_text())
    assert f"--target operator -t {values['image']['repository']}:" in header
    assert f"--target server   -t {values['serverImage']['repository']}:" in header
