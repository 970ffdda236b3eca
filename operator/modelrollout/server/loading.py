"""Model loading: fetch, verify the sha256, then deserialize (skops, MLflow, joblib).

Order matters for safety: the digest is checked on the fetched bytes before any
deserializer sees them; skops trust comes only from our configuration (never from the
artifact, cf. GHSA-w582-9x45-8mpx); pickle-based formats need an explicit opt-in.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import yaml

from modelrollout.profile.schema import Profile
from modelrollout.server.columns import column_datatypes
from modelrollout.server.digest import bytes_sha256, tree_sha256
from modelrollout.server.fetch import Artifact, FetchError, one_line, read_artifact

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """The model cannot be served; ``reason`` is one line for logs and status."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Format(StrEnum):
    SKOPS = "skops"
    MLFLOW = "mlflow"
    JOBLIB = "joblib"


class _SpecLike(Protocol):
    """What ``ModelSource.from_spec`` reads from ``modelrollout.api.ModelSpec``."""

    @property
    def uri(self) -> str: ...
    @property
    def format(self) -> Any: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def trusted_types(self) -> Any: ...
    @property
    def allow_pickle(self) -> bool: ...


@dataclass(frozen=True)
class ModelSource:
    uri: str
    format: Format = Format.SKOPS
    sha256: str | None = None
    trusted_types: tuple[str, ...] = ()
    allow_pickle: bool = False
    pvc_root: str | None = None

    @classmethod
    def from_spec(cls, spec: _SpecLike, pvc_root: str | None = None) -> ModelSource:
        fmt = getattr(spec.format, "value", spec.format) or Format.SKOPS
        return cls(
            uri=spec.uri,
            format=Format(str(fmt)),
            sha256=spec.sha256 or None,
            trusted_types=tuple(spec.trusted_types or ()),
            allow_pickle=bool(spec.allow_pickle),
            pvc_root=pvc_root,
        )


@dataclass(frozen=True)
class LoadedModel:
    estimator: Any
    source: ModelSource
    sha256: str
    n_features: int | None
    classes: list[Any] | None = None
    feature_names: list[str] | None = None
    # For a model fitted on a DataFrame: each column's protocol datatype (server.columns).
    column_types: dict[str, str] | None = None
    has_proba: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # The training data's histograms, to count live inputs against (server.reference).
    profile: Profile | None = None


def load_model(source: ModelSource) -> LoadedModel:
    try:
        fmt = Format(source.format)
    except ValueError:
        raise ModelLoadError(f"unknown model format {source.format!r}") from None
    try:
        artifact = read_artifact(source.uri, source.pvc_root)
    except FetchError as exc:
        raise ModelLoadError(str(exc)) from exc
    digest = tree_sha256(artifact.files) if artifact.is_dir else bytes_sha256(artifact.data)
    if source.sha256 is not None and digest != source.sha256.strip().lower():
        raise ModelLoadError(
            f"sha256 mismatch for {source.uri}: expected {source.sha256}, got {digest}"
        )
    estimator = _deserialize(fmt, artifact, source)
    return describe(estimator, source, digest)


def _deserialize(fmt: Format, artifact: Artifact, source: ModelSource) -> Any:
    if fmt is Format.MLFLOW:
        return _load_mlflow(artifact, source)
    if artifact.is_dir:
        raise ModelLoadError(f"{source.uri} is a directory; format {fmt} expects one file")
    if fmt is Format.SKOPS:
        return _load_skops(artifact.data, source.trusted_types, source.uri)
    return _load_pickle(artifact.data, source, "joblib")


def _load_skops(data: bytes, trusted: Iterable[str], where: str) -> Any:
    import skops.io

    trust = sorted(set(trusted))
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as exc:
        raise ModelLoadError(f"{where} is not a valid skops file: {one_line(exc)}") from exc
    refused = sorted(set(untrusted) - set(trust))
    if refused:
        raise ModelLoadError(
            f"{where} needs types that are not trusted: {', '.join(refused)} "
            "(add them to trustedTypes if you trust them)"
        )
    try:
        return skops.io.loads(data, trusted=trust)
    except Exception as exc:
        raise ModelLoadError(f"cannot load skops model {where}: {one_line(exc)}") from exc


def _load_pickle(data: bytes, source: ModelSource, what: str) -> Any:
    if not source.allow_pickle:
        raise ModelLoadError(
            f"{source.uri}: {what} runs arbitrary code when loaded; "
            "refused without allowPickle: true"
        )
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ModelLoadError(f"cannot load {what} model {source.uri}: {one_line(exc)}") from exc


def _load_mlflow(artifact: Artifact, source: ModelSource) -> Any:
    if not artifact.is_dir or "MLmodel" not in artifact.files:
        raise ModelLoadError(f"{source.uri} is not an MLflow model directory (no MLmodel file)")
    try:
        meta = yaml.safe_load(artifact.files["MLmodel"])
    except yaml.YAMLError as exc:
        raise ModelLoadError(f"{source.uri}/MLmodel is not valid YAML") from exc
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    flavors = flavors if isinstance(flavors, dict) else {}
    flavor = flavors.get("sklearn")
    if not isinstance(flavor, dict):
        flavor = _sklearn_behind_pyfunc(flavors.get("python_function"), source.uri)
    model_file = str(flavor.get("pickled_model", "model.pkl"))
    fmt = str(flavor.get("serialization_format", "cloudpickle"))
    data = artifact.files.get(model_file)
    if data is None:
        raise ModelLoadError(f"{source.uri}: model file {model_file!r} named in MLmodel is missing")
    where = f"{source.uri}/{model_file}"
    if fmt == "skops":
        return _load_skops(data, source.trusted_types, where)
    if fmt in ("pickle", "cloudpickle"):
        return _load_pickle(data, source, f"MLflow {fmt}")
    raise ModelLoadError(f"{source.uri}: unsupported MLflow serialization_format {fmt!r}")


def _sklearn_behind_pyfunc(pyfunc: Any, uri: str) -> dict[str, Any]:
    """A python_function flavor that only wraps scikit-learn (loader_module mlflow.sklearn) is
    loaded as its sklearn model; any other pyfunc is someone's Python code, never run here."""
    if not isinstance(pyfunc, dict):
        raise ModelLoadError(f"{uri}: MLmodel has no sklearn flavor")
    if pyfunc.get("loader_module") != "mlflow.sklearn":
        raise ModelLoadError(
            f"{uri}: MLmodel has no sklearn flavor, and its python_function flavor "
            f"(loader_module {pyfunc.get('loader_module')!r}) is arbitrary Python code, not a "
            "scikit-learn model: log the model with mlflow.sklearn"
        )
    model_file = str(pyfunc.get("model_path") or pyfunc.get("data") or "model.pkl")
    fmt = "skops" if model_file.endswith(".skops") else "cloudpickle"
    return {"pickled_model": model_file, "serialization_format": fmt}


def describe(estimator: Any, source: ModelSource, digest: str) -> LoadedModel:
    """What the server needs to know about an estimator to validate and label requests."""
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"{source.uri}: the loaded object has no predict method")
    classes = getattr(estimator, "classes_", None)
    # Multi-output classifiers keep a list of arrays; we label single-output ones only.
    class_list = None
    if isinstance(classes, np.ndarray) and classes.ndim == 1:
        class_list = [_plain(c) for c in classes]
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    feature_names = None if names is None else [str(n) for n in names]
    return LoadedModel(
        estimator=estimator,
        source=source,
        sha256=digest,
        n_features=int(n_features) if n_features is not None else None,
        classes=class_list,
        feature_names=feature_names,
        column_types=None if feature_names is None else column_datatypes(estimator, feature_names),
        has_proba=class_list is not None and callable(getattr(estimator, "predict_proba", None)),
    )


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so labels and JSON see ints and strings."""
    return value.item() if isinstance(value, np.generic) else value
