"""Command line and environment: every flag also reads MODELROLLOUT_<FLAG> (the operator
sets environment variables on pods; a flag given on the command line wins)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from modelrollout.server.faults import FaultConfig
from modelrollout.server.loading import Format, ModelSource

ENV_PREFIX = "MODELROLLOUT_"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ServerConfig:
    name: str
    source: ModelSource
    version: str = ""
    revision: str = ""
    host: str = "0.0.0.0"
    port: int = 8080
    grpc_port: int = 0  # 0: no gRPC listener
    workers: int = 1
    max_body_bytes: int = 8 * 1024 * 1024
    drain_seconds: float = 0.0
    shutdown_timeout: float = 30.0
    log_level: str = "INFO"
    fast_path: bool = True
    feedback_key: str | None = field(default=None, repr=False)  # None: derived from the name
    profile_uri: str | None = None  # a reference profile (modelrollout-profile) beside the model
    profile_sha256: str | None = None
    shadow_config: str | None = None  # a file naming the candidate to mirror to (server.shadow)
    faults: FaultConfig = field(default_factory=FaultConfig)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def d(flag: str, default: str | None = None) -> str | None:
        return env.get(ENV_PREFIX + flag.upper().replace("-", "_"), default)

    p = argparse.ArgumentParser(
        prog="modelrollout-server",
        description="Serve a scikit-learn model over the Open Inference Protocol v2 (REST, gRPC).",
    )
    p.add_argument("--name", default=d("name", "model"), help="model name in the URL paths")
    p.add_argument("--uri", default=d("uri"), help="file://, path, http(s)://, s3://, pvc://")
    p.add_argument("--format", default=d("format", "skops"), choices=[f.value for f in Format])
    p.add_argument("--sha256", default=d("sha256"), help="expected digest of the artifact")
    p.add_argument(
        "--trusted-type",
        action="append",
        dest="trusted_types",
        help="a type skops may load (repeatable; env: comma-separated MODELROLLOUT_TRUSTED_TYPES)",
    )
    p.add_argument("--allow-pickle", action="store_true", default=_flag(d("allow-pickle")))
    p.add_argument("--version", default=d("version", ""), help="model version label")
    p.add_argument("--revision", default=d("revision", ""), help="rollout revision label")
    p.add_argument("--host", default=d("host", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(d("port", "8080") or 8080))
    p.add_argument(
        "--grpc-port",
        type=int,
        default=int(d("grpc-port", "0") or 0),
        help="port of the protocol's gRPC form (KServe and MLServer use 8081); 0: off",
    )
    p.add_argument("--workers", type=int, default=int(d("workers", "1") or 1))
    p.add_argument("--pvc-root", default=d("pvc-root"), help="where pvc:// claims are mounted")
    p.add_argument(
        "--max-body-bytes", type=int, default=int(d("max-body-bytes", str(8 * 1024 * 1024)) or 0)
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=float(d("drain-seconds", "0") or 0),
        help="after SIGTERM, keep serving this long with readiness false",
    )
    p.add_argument(
        "--shutdown-timeout", type=float, default=float(d("shutdown-timeout", "30") or 30)
    )
    p.add_argument("--log-level", default=d("log-level", "INFO"))
    p.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        default=_flag(d("fast-path", "true")),
        help="always call the estimator's own predict_proba (see modelrollout.server.fastpath)",
    )
    p.add_argument(
        "--profile-uri",
        default=d("profile-uri"),
        help="reference profile (written by modelrollout-profile): count live inputs on its bins",
    )
    p.add_argument("--profile-sha256", default=d("profile-sha256"), help="its expected digest")
    p.add_argument(
        "--shadow-config",
        default=d("shadow-config"),
        help="JSON file {target, percent, revision}: mirror that share of requests to the "
        "candidate and compare its answers (re-read when it changes)",
    )
    p.add_argument(
        "--feedback-key",
        default=d("feedback-key"),
        help="secret that signs feedback tokens (set MODELROLLOUT_FEEDBACK_KEY from a Secret); "
        "default: derived from --name, which detects damaged tokens but not forged ones",
    )
    faults = p.add_argument_group("fault injection (tests and demos only; off by default)")
    faults.add_argument(
        "--fault-error-rate", type=float, default=float(d("fault-error-rate", "0") or 0)
    )
    faults.add_argument(
        "--fault-latency-ms", type=float, default=float(d("fault-latency-ms", "0") or 0)
    )
    faults.add_argument(
        "--fault-prediction-shift",
        type=float,
        default=float(d("fault-prediction-shift", "0") or 0),
        help="classifiers: share of probability moved to the last class; regressors: offset",
    )
    faults.add_argument(
        "--fault-error-after-seconds",
        type=float,
        default=float(d("fault-error-after-seconds", "0") or 0),
        help="the injected errors begin this many seconds after the server started",
    )
    seed = d("fault-seed")
    faults.add_argument("--fault-seed", type=int, default=int(seed) if seed else None)
    return p


def parse_config(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> ServerConfig:
    environ = os.environ if env is None else env
    parser = build_parser(environ)
    a = parser.parse_args(argv)
    if not a.uri:
        parser.error("--uri (or MODELROLLOUT_URI) is required")
    if a.trusted_types is None:
        raw = environ.get(ENV_PREFIX + "TRUSTED_TYPES", "")
        a.trusted_types = [t.strip() for t in raw.split(",") if t.strip()]
    if not 0.0 <= a.fault_error_rate <= 1.0:
        parser.error("--fault-error-rate must be between 0 and 1")
    if a.fault_error_after_seconds < 0:
        parser.error("--fault-error-after-seconds must not be negative")
    if a.workers < 1 or a.max_body_bytes < 1:
        parser.error("--workers and --max-body-bytes must be positive")
    return ServerConfig(
        name=a.name,
        source=ModelSource(
            uri=a.uri,
            format=Format(a.format),
            sha256=a.sha256 or None,
            trusted_types=tuple(a.trusted_types),
            allow_pickle=a.allow_pickle,
            pvc_root=a.pvc_root,
        ),
        version=a.version,
        revision=a.revision,
        host=a.host,
        port=a.port,
        grpc_port=a.grpc_port,
        workers=a.workers,
        max_body_bytes=a.max_body_bytes,
        drain_seconds=a.drain_seconds,
        shutdown_timeout=a.shutdown_timeout,
        log_level=a.log_level.upper(),
        fast_path=a.fast_path,
        feedback_key=a.feedback_key or None,
        profile_uri=a.profile_uri or None,
        profile_sha256=a.profile_sha256 or None,
        shadow_config=a.shadow_config or None,
        faults=FaultConfig(
            error_rate=a.fault_error_rate,
            latency_ms=a.fault_latency_ms,
            prediction_shift=a.fault_prediction_shift,
            seed=a.fault_seed,
            error_after_s=a.fault_error_after_seconds,
        ),
    )


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE
