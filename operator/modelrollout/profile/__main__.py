"""modelrollout-profile: write the reference profile of a dataset (and of a model's predictions on
it), to ship beside the model. Exit 0 written, 2 bad input (one line on stderr)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from modelrollout.holdout.dataset import DatasetError, read_dataset
from modelrollout.profile.build import DEFAULT_BINS, ProfileError, build_profile
from modelrollout.profile.schema import MAX_BINS
from modelrollout.server.fetch import one_line
from modelrollout.server.loading import Format, ModelLoadError, ModelSource, load_model


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelrollout-profile",
        description="Histograms of each feature (and of the model's predictions) of a dataset: "
        "the reference the model server counts live inputs against.",
    )
    p.add_argument("--data", required=True, help="CSV or Parquet: path, file://, s3://, https://")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--target", help="the label column, left out of the features")
    p.add_argument("--model", help="the model (as the server loads it): also profile predictions")
    p.add_argument("--model-format", choices=[f.value for f in Format], default="skops")
    p.add_argument("--trusted-type", action="append", default=[], dest="trusted_types")
    p.add_argument("--allow-pickle", action="store_true")
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help="quantile bins per number")
    p.add_argument("--top", type=int, default=MAX_BINS - 1, help="categories kept per string")
    p.add_argument("--out", type=Path, required=True, help="where to write the profile (JSON)")
    return p


def _features(frame: pd.DataFrame, target: str | None, estimator: object) -> pd.DataFrame:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        missing = [str(n) for n in names if n not in frame.columns]
        if missing:
            raise ProfileError(f"the data lacks the model's columns {missing}")
        return frame[[str(n) for n in names]]
    if target is not None and target not in frame.columns:
        raise ProfileError(f"no column {target!r} in the data")
    return frame.drop(columns=[target]) if target else frame


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        frame = read_dataset(args.data, args.format)
        estimator = None
        if args.model:
            source = ModelSource(
                uri=args.model,
                format=Format(args.model_format),
                trusted_types=tuple(args.trusted_types),
                allow_pickle=args.allow_pickle,
            )
            estimator = load_model(source).estimator
        features = _features(frame, args.target, estimator)
        predictions = None
        if estimator is not None:
            try:
                predictions = np.asarray(estimator.predict(features))
            except Exception as exc:  # any estimator error is the input's fault here
                raise ProfileError(f"the model failed to predict: {one_line(exc)}") from None
        profile = build_profile(features, predictions, args.bins, args.top)
        args.out.write_text(profile.model_dump_json(indent=1), encoding="utf-8")
    except ModelLoadError as exc:
        print(f"error: model: {exc.reason}", file=sys.stderr)
        return 2
    except (DatasetError, ProfileError, OSError, ValueError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    shown = ", ".join(f.name for f in profile.features[:8])
    extra = " and the predictions" if profile.prediction else ""
    print(f"wrote {args.out}: {len(profile.features)} features ({shown}){extra}, {len(frame)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
