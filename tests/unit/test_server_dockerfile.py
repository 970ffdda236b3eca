"""The model server's image: a clean slim Python with only the virtualenv, run as the operator's
pod templates expect (uid, port)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelrollout.core.children import GRPC_PORT, SERVER_PORT, SERVER_UID
from tests.unit.dockerfile import read

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = read(REPO / "Dockerfile")
TARGETS = ("operator", "server")
BUILD_TOOLS = {"apt", "gcc", "g++", "build-essential", "make"}
# LightGBM's wheels link the system's OpenMP runtime (the slim image lacks it).
RUNTIME_LIBRARIES = {"libgomp1"}


def test_the_server_target_starts_the_model_server_on_the_port_the_operator_targets() -> None:
    assert DOCKERFILE.command("server") == ["modelrollout-server"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "modelrollout-server" in project["scripts"]
    assert DOCKERFILE.exposed("server") == {SERVER_PORT, GRPC_PORT}
    assert DOCKERFILE.env("server")["MODELROLLOUT_PORT"] == str(SERVER_PORT)
    assert DOCKERFILE.env("server")["MODELROLLOUT_GRPC_PORT"] == str(GRPC_PORT)


def test_the_server_runs_as_the_uid_of_the_operator_s_pod_templates() -> None:
    assert DOCKERFILE.user("server") == f"{SERVER_UID}:{SERVER_UID}"


@pytest.mark.parametrize("target", TARGETS)
def test_final_images_start_from_the_slim_python_the_virtualenv_was_built_on(target: str) -> None:
    chain = [stage.name for stage in DOCKERFILE.chain(target)]
    [built_in] = {
        copy.flags()["from"]
        for stage in DOCKERFILE.chain(target)
        for copy in stage.all("COPY")
        if "from" in copy.flags()
    }
    # A clean image, not the one that installed (no compilers, caches or sources)...
    assert built_in not in chain
    assert DOCKERFILE.image(target) == "python:3.11-slim"
    # ...with the same Python the virtualenv was created with.
    assert DOCKERFILE.image(built_in) == DOCKERFILE.image(target)


@pytest.mark.parametrize("target", TARGETS)
def test_final_images_install_nothing_themselves(target: str) -> None:
    """No build tools and no Python packages: only the virtualenv, and from Debian only the
    runtime libraries that wheels link against without bundling them."""
    for run in DOCKERFILE.runs(target):
        words = run.words()
        assert not BUILD_TOOLS & set(words), run.value
        if "apt-get" in words and "install" in words:
            packages = {w for w in words[words.index("install") + 1 :] if not w.startswith("-")}
            packages -= {"&&", "rm", "/var/lib/apt/lists/*"}
            assert packages <= RUNTIME_LIBRARIES, run.value
        pips = [i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] in ("pip", "pip3")]
        assert not any(words[i + 1 : i + 2] == ["install"] for i in pips), run.value
