"""Model loading: digest first, trust lists from configuration, pickle only on request."""

from __future__ import annotations

import http.server
import pathlib
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io
import yaml
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from modelrollout.api import ModelSpec
from modelrollout.server.digest import path_sha256
from modelrollout.server.fetch import resolve_uri
from modelrollout.server.loading import Format, ModelLoadError, ModelSource, load_model

TREE = "sklearn.tree._tree.Tree"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=200, n_features=6, random_state=0)


@pytest.fixture(scope="module")
def lr(data: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    return LogisticRegression().fit(*data)


@pytest.fixture
def lr_file(tmp_path: Path, lr: LogisticRegression) -> Path:
    path = tmp_path / "lr.skops"
    skops.io.dump(lr, path)
    return path


def _booby_trap(tmp_path: Path) -> tuple[Path, Path]:
    """A pickle whose loading creates a marker file: proof that it was deserialized."""
    marker = tmp_path / "was-unpickled"

    class Trap:
        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            return (pathlib.Path.touch, (pathlib.Path(marker),))

    path = tmp_path / "trap.joblib"
    path.write_bytes(pickle.dumps(Trap()))
    return path, marker


def test_skops_logistic_regression_loads_and_describes(lr_file: Path) -> None:
    model = load_model(ModelSource(uri=str(lr_file)))
    assert model.n_features == 6
    assert model.classes == [0, 1]
    assert model.has_proba
    assert model.sha256 == path_sha256(lr_file)


def test_sha256_is_checked_and_matching_digest_loads(lr_file: Path) -> None:
    good = path_sha256(lr_file)
    assert load_model(ModelSource(uri=f"file://{lr_file}", sha256=good.upper())).sha256 == good
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_model(ModelSource(uri=str(lr_file), sha256="0" * 64))


def test_sha256_mismatch_is_refused_before_deserializing(tmp_path: Path) -> None:
    trap, marker = _booby_trap(tmp_path)
    source = ModelSource(uri=str(trap), format=Format.JOBLIB, allow_pickle=True, sha256="ab" * 32)
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_model(source)
    assert not marker.exists()
    # The trap does go off when the digest matches: the check above is what stopped it.
    with pytest.raises(ModelLoadError, match="no predict method"):
        load_model(ModelSource(uri=str(trap), format=Format.JOBLIB, allow_pickle=True))
    assert marker.exists()


def test_joblib_is_refused_without_allow_pickle(tmp_path: Path, lr: LogisticRegression) -> None:
    trap, marker = _booby_trap(tmp_path)
    with pytest.raises(ModelLoadError, match="allowPickle"):
        load_model(ModelSource(uri=str(trap), format=Format.JOBLIB))
    assert not marker.exists()
    real = tmp_path / "lr.joblib"
    joblib.dump(lr, real)
    model = load_model(ModelSource(uri=str(real), format=Format.JOBLIB, allow_pickle=True))
    assert model.classes == [0, 1]


def test_untrusted_skops_type_is_refused_unless_configured(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    path = tmp_path / "rf.skops"
    skops.io.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(*data), path)
    with pytest.raises(ModelLoadError, match=TREE):
        load_model(ModelSource(uri=str(path)))
    model = load_model(ModelSource(uri=str(path), trusted_types=(TREE,)))
    assert model.has_proba


def test_garbage_skops_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelSource(uri=str(path)))
    assert "\n" not in err.value.reason and "bad.skops" in err.value.reason


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(ModelSource(uri=str(tmp_path / "nope.skops")))


def _mlflow_dir(tmp_path: Path, lr: LogisticRegression, fmt: str) -> Path:
    root = tmp_path / "mlflow-model"
    root.mkdir()
    if fmt == "skops":
        skops.io.dump(lr, root / "model.skops")
        name = "model.skops"
    else:
        name = "model.pkl"
        (root / name).write_bytes(pickle.dumps(lr))
    flavor = {"pickled_model": name, "serialization_format": fmt, "sklearn_version": "1.9"}
    meta = {"flavors": {"sklearn": flavor, "python_function": {"loader_module": "x"}}}
    (root / "MLmodel").write_text(yaml.safe_dump(meta))
    return root


def test_mlflow_directory_with_skops(tmp_path: Path, lr: LogisticRegression) -> None:
    root = _mlflow_dir(tmp_path, lr, "skops")
    digest = path_sha256(root)
    model = load_model(ModelSource(uri=str(root), format=Format.MLFLOW, sha256=digest))
    assert model.sha256 == digest and model.n_features == 6
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_model(ModelSource(uri=str(root), format=Format.MLFLOW, sha256="1" * 64))


def test_mlflow_pickle_needs_allow_pickle(tmp_path: Path, lr: LogisticRegression) -> None:
    root = _mlflow_dir(tmp_path, lr, "pickle")
    with pytest.raises(ModelLoadError, match="allowPickle"):
        load_model(ModelSource(uri=str(root), format=Format.MLFLOW))
    model = load_model(ModelSource(uri=str(root), format=Format.MLFLOW, allow_pickle=True))
    assert model.classes == [0, 1]


def test_mlflow_without_sklearn_flavor_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "MLmodel").write_text("flavors: {python_function: {}}\n")
    with pytest.raises(ModelLoadError, match="no sklearn flavor"):
        load_model(ModelSource(uri=str(root), format=Format.MLFLOW))


def test_directory_digest_matches_sha256sum_recipe(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b").write_bytes(b"bee")
    (tmp_path / "d" / "sub" / "a").write_bytes(b"ay")
    lines = "".join(
        f"{hashlib.sha256(c).hexdigest()}  {p}\n" for p, c in [("b", b"bee"), ("sub/a", b"ay")]
    )
    assert path_sha256(tmp_path / "d") == hashlib.sha256(lines.encode()).hexdigest()


def test_pvc_uri_maps_to_mount_root(tmp_path: Path, lr_file: Path) -> None:
    assert resolve_uri("pvc://claim/a/b.skops", "/mnt/x") == "/mnt/x/claim/a/b.skops"
    claim = tmp_path / "models" / "claim"
    claim.mkdir(parents=True)
    (claim / "m.skops").write_bytes(lr_file.read_bytes())
    model = load_model(ModelSource(uri="pvc://claim/m.skops", pvc_root=str(tmp_path / "models")))
    assert model.n_features == 6


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[str]:
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path)
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_uri(http_dir: str, lr_file: Path) -> None:
    digest = path_sha256(lr_file)
    model = load_model(ModelSource(uri=f"{http_dir}/{lr_file.name}", sha256=digest))
    assert model.sha256 == digest
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(ModelSource(uri=f"{http_dir}/missing.skops"))


def test_from_spec_reads_the_api_fields() -> None:
    spec = ModelSpec.model_validate(
        {
            "name": "fraud",
            "version": "7",
            "uri": "s3://b/m.joblib",
            "format": "joblib",
            "sha256": "ab" * 32,
            "trustedTypes": ["x.Y"],
            "allowPickle": True,
        }
    )
    source = ModelSource.from_spec(spec)
    assert source == ModelSource(
        uri="s3://b/m.joblib",
        format=Format.JOBLIB,
        sha256="ab" * 32,
        trusted_types=("x.Y",),
        allow_pickle=True,
    )


def test_digest_command_prints_what_the_server_checks(
    lr_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelrollout.server.digest import main

    assert main([str(lr_file)]) == 0
    assert capsys.readouterr().out.strip() == load_model(ModelSource(uri=str(lr_file))).sha256
    assert main([]) == 2
