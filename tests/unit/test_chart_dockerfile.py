"""The Dockerfile builds the images the chart runs, installed the way CI installs the package."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from modelrollout.operator_main import parse_args
from tests.unit.dockerfile import read

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = read(REPO / "Dockerfile")
TARGETS = ("operator", "server")
INSTALL_SCRIPT = "scripts/docker-install.sh"


def console_scripts() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def documented_builds() -> dict[str, str]:
    """`docker build --target T -t REPOSITORY:TAG .` in the Dockerfile's header: T -> REPOSITORY."""
    builds: dict[str, str] = {}
    for comment in DOCKERFILE.comments:
        words = comment.replace("=", " ").split()
        if words[:2] == ["docker", "build"] and "--target" in words:
            tag = words[words.index("-t" if "-t" in words else "--tag") + 1]
            builds[words[words.index("--target") + 1]] = tag.rpartition(":")[0]
    return builds


def test_the_chart_runs_the_images_of_the_dockerfile_s_targets() -> None:
    values = yaml.safe_load((REPO / "charts" / "modelrollout" / "values.yaml").read_text())
    assert documented_builds() == {
        "operator": values["image"]["repository"],
        "server": values["serverImage"]["repository"],
    }
    assert set(TARGETS) <= set(DOCKERFILE.names)


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_runs_as_a_numeric_non_root_user(target: str) -> None:
    user = DOCKERFILE.user(target)
    # Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd.
    assert user is not None and re.fullmatch(r"\d+:\d+", user), f"USER {user}"
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and gid != 0


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_holds_the_virtualenv_made_by_the_install_script_ci_runs(target: str) -> None:
    [copy] = [
        copy
        for stage in DOCKERFILE.chain(target)
        for copy in stage.all("COPY")
        if "from" in copy.flags()
    ]
    built_in = copy.flags()["from"]
    source, destination = copy.operands()
    assert source == destination  # a virtualenv only works where it was created
    installs = [run.words() for run in DOCKERFILE.runs(built_in) if INSTALL_SCRIPT in run.words()]
    assert installs, f"stage {built_in} does not run {INSTALL_SCRIPT}"
    words = installs[0]
    at = words.index(INSTALL_SCRIPT)
    assert words[at - 1] == "bash"
    assert words[at + 1] == source  # docker-install.sh PREFIX [SOURCE]
    copied = [
        op for stage in DOCKERFILE.chain(built_in) for c in stage.all("COPY") for op in c.operands()
    ]
    assert INSTALL_SCRIPT in copied  # the script is in the build stage before it runs
    assert f"{source}/bin" in DOCKERFILE.env(target)["PATH"].split(":")


def test_ci_builds_the_images_so_their_install_script_runs() -> None:
    """.ci/run runs `make test`, whose `images` prerequisite builds both Dockerfile targets."""
    commands = [
        shlex.split(line)
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert ["make", "test"] in commands
    makefile = (REPO / "Makefile").read_text().splitlines()
    [test_rule] = [line for line in makefile if line.startswith("test:")]
    assert "images" in test_rule.split(":", 1)[1].split()
    images_recipe = makefile[makefile.index("images:") + 1]
    assert "scripts/build-images.sh" in images_recipe
    script = (REPO / "scripts" / "build-images.sh").read_text()
    assert f"targets=({' '.join(TARGETS)})" in script
    assert "buildah bud" in script and "--target" in script


def test_the_operator_target_starts_the_operator_with_flags_it_accepts() -> None:
    program, *flags = DOCKERFILE.command("operator")
    assert program == "modelrollout-operator"
    assert program in console_scripts()
    args = parse_args(flags)  # exits (SystemExit) on a flag the operator does not know
    assert args.all_namespaces
    liveness = urlsplit(args.liveness)
    assert liveness.path == "/healthz"
    assert {liveness.port, args.metrics_port} <= DOCKERFILE.exposed("operator")
