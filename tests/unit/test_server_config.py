"""Command line and MODELROLLOUT_* environment variables."""

from __future__ import annotations

import pytest

from modelrollout.server.config import parse_config
from modelrollout.server.loading import Format


def test_environment_configures_everything() -> None:
    env = {
        "MODELROLLOUT_NAME": "fraud",
        "MODELROLLOUT_URI": "pvc://models/fraud.skops",
        "MODELROLLOUT_FORMAT": "mlflow",
        "MODELROLLOUT_SHA256": "ab" * 32,
        "MODELROLLOUT_TRUSTED_TYPES": "sklearn.tree._tree.Tree, numpy.dtype",
        "MODELROLLOUT_ALLOW_PICKLE": "true",
        "MODELROLLOUT_VERSION": "7",
        "MODELROLLOUT_REVISION": "9b1e22",
        "MODELROLLOUT_PORT": "9000",
        "MODELROLLOUT_FAULT_ERROR_RATE": "0.5",
        "MODELROLLOUT_FAULT_ERROR_AFTER_SECONDS": "30",
    }
    c = parse_config([], env)
    assert (c.name, c.version, c.revision, c.port) == ("fraud", "7", "9b1e22", 9000)
    assert c.source.format is Format.MLFLOW
    assert c.source.trusted_types == ("sklearn.tree._tree.Tree", "numpy.dtype")
    assert c.source.allow_pickle and c.source.sha256 == "ab" * 32
    assert c.faults.error_rate == 0.5 and c.faults.active
    assert c.faults.error_after_s == 30


def test_flags_win_over_environment_and_faults_are_off_by_default() -> None:
    env = {"MODELROLLOUT_URI": "/a", "MODELROLLOUT_TRUSTED_TYPES": "x.A", "MODELROLLOUT_PORT": "1"}
    c = parse_config(["--uri", "/b", "--trusted-type", "y.B", "--port", "2"], env)
    assert (c.source.uri, c.source.trusted_types, c.port) == ("/b", ("y.B",), 2)
    assert c.source.format is Format.SKOPS and not c.source.allow_pickle
    assert not c.faults.active


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--uri", "/m", "--fault-error-rate", "2"],
        ["--uri", "/m", "--format", "onnx"],
        ["--uri", "/m", "--fault-error-after-seconds", "-1"],
    ],
)
def test_invalid_command_lines_exit(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(argv, {})
