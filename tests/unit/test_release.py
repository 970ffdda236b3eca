"""One version, set in pyproject.toml: the package, the chart, the images' names and the release
workflow (.github/workflows/release.yaml) follow it, and all name the images where they are
published."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelrollout
from modelrollout.core.children import DEFAULT_SERVER_IMAGE
from tests.testenv.images import REGISTRY, image_name

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def workflow_step(job: str, step_id_or_name: str) -> dict[str, Any]:
    steps = load(WORKFLOW)["jobs"][job]["steps"]
    [step] = [s for s in steps if step_id_or_name in (s.get("id"), s.get("name"))]
    return dict(step)


def test_the_package_reports_pyproject_s_version() -> None:
    assert modelrollout.__version__ == VERSION, (
        "the installed metadata is stale: reinstall the package (`make setup`)"
    )


def test_the_chart_s_version_and_app_version_are_pyproject_s_version() -> None:
    chart = load(CHART / "Chart.yaml")
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)


def test_the_chart_and_the_operator_default_to_the_published_images() -> None:
    values = load(CHART / "values.yaml")
    # The chart's tags default to appVersion (checked above to be the version).
    assert values["image"]["repository"] == image_name("operator", VERSION).rpartition(":")[0]
    assert values["serverImage"]["repository"] == image_name("server", VERSION).rpartition(":")[0]
    assert image_name("server", VERSION) == DEFAULT_SERVER_IMAGE


def test_local_image_archives_carry_the_published_names() -> None:
    script = (REPO / "scripts" / "build-images.sh").read_text()
    assert f'registry="{REGISTRY}"' in script
    assert "docker-archive:$out_dir/.$t.tar.tmp:$registry/modelrollout-$t:$version" in script


def test_the_release_workflow_pushes_the_images_the_chart_runs() -> None:
    workflow = load(WORKFLOW)
    job = workflow["jobs"]["images"]
    [build] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    pushed = set()
    for target in job["strategy"]["matrix"]["target"]:
        assert build["with"]["target"] == "${{ matrix.target }}"
        tag = (
            build["with"]["tags"]
            .replace("${{ env.REGISTRY }}", workflow["env"]["REGISTRY"])
            .replace("${{ matrix.target }}", target)
            .replace("${{ needs.version.outputs.version }}", VERSION)
        )
        pushed.add(tag)
    assert pushed == {image_name("operator", VERSION), image_name("server", VERSION)}


def run_step(
    step: dict[str, Any], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """A `run:` step as GitHub runs it (bash -e), with this interpreter first on PATH."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("tag", [f"v{VERSION}", "v0.0.0-not-this", VERSION])
def test_the_release_refuses_a_tag_other_than_v_and_pyproject_s_version(
    tag: str, tmp_path: Path
) -> None:
    output = tmp_path / "github_output"
    result = run_step(
        workflow_step("version", "check"),
        {"GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output)},
        REPO,
    )
    if tag == f"v{VERSION}":
        assert result.returncode == 0, result.stdout + result.stderr
        assert output.read_text() == f"version={VERSION}\n"
    else:
        assert result.returncode == 1
        assert f"does not match pyproject.toml's version {VERSION}" in result.stdout


def test_the_release_checks_that_install_yaml_runs_its_images(tmp_path: Path) -> None:
    step = workflow_step("version", "manifests/install.yaml names this version's images")
    env = {"REGISTRY": load(WORKFLOW)["env"]["REGISTRY"]}
    assert run_step(step, {**env, "VERSION": VERSION}, REPO).returncode == 0
    stale = run_step(step, {**env, "VERSION": "0.0.0"}, REPO)
    assert stale.returncode == 1
    assert "run 'make manifests'" in stale.stdout
