"""Reference profiles: built from data by modelrollout-profile, read by the model server, and
live inputs counted on the same bins."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import skops.io
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelrollout.profile.__main__ import main as profile_main
from modelrollout.profile.build import ProfileError, build_profile
from modelrollout.profile.schema import MAX_FEATURES, PREDICTION, FeatureProfile, Profile
from modelrollout.server.app import ServerState
from modelrollout.server.digest import bytes_sha256
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.loading import ModelLoadError, ModelSource, describe
from modelrollout.server.metrics import ServerMetrics
from modelrollout.server.reference import load_profile

RNG = np.random.default_rng(4)
TRAIN = pd.DataFrame(
    {
        "amount": RNG.uniform(0, 100, 1000),
        "items": RNG.integers(1, 5, 1000),
        "country": RNG.choice(["FR", "NO", "PE"], 1000, p=[0.5, 0.3, 0.2]).astype(object),
    }
)
LABEL = np.where(TRAIN["amount"] > 50, "fraud", "ok")
PIPELINE = Pipeline(
    [
        (
            "prep",
            ColumnTransformer(
                [
                    ("n", StandardScaler(), ["amount", "items"]),
                    ("c", OneHotEncoder(handle_unknown="ignore"), ["country"]),
                ]
            ),
        ),
        ("model", LogisticRegression()),
    ]
).fit(TRAIN, LABEL)

Factory = Callable[..., Any]


def test_numbers_get_quantile_bins_strings_their_most_common_values() -> None:
    profile = build_profile(TRAIN, PIPELINE.predict(TRAIN), bins=10)
    amount, items, country = profile.features
    assert len(amount.edges) == 9 and amount.bins == 10
    assert all(80 <= c <= 120 for c in amount.counts)  # deciles of a uniform sample
    assert items.edges == [1.0, 2.0, 3.0, 4.0]  # few distinct values: duplicate edges merge
    assert sum(items.counts) == 1000
    assert country.categories == ["FR", "NO", "PE"] and country.counts[-1] == 0
    assert profile.prediction is not None
    assert sorted(profile.prediction.categories) == ["fraud", "ok"]
    assert profile.tracked()[-1].name == PREDICTION


def test_bad_profiles_are_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="expected one more"):
        FeatureProfile(name="a", kind="numeric", edges=[1.0, 2.0], counts=[1.0, 1.0])
    with pytest.raises(ValidationError, match="edges must increase"):
        FeatureProfile(name="a", kind="numeric", edges=[2.0, 1.0], counts=[1.0, 1.0, 1.0])
    wide = pd.DataFrame({f"f{i}": [1.0, 2.0] for i in range(MAX_FEATURES + 1)})
    with pytest.raises(ProfileError, match="at most 32"):
        build_profile(wide)
    with pytest.raises(ProfileError, match="no rows"):
        build_profile(TRAIN.iloc[:0])


def test_the_command_writes_a_profile_of_the_data_and_the_model_s_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    TRAIN.assign(label=LABEL).to_csv(tmp_path / "train.csv", index=False)
    skops.io.dump(PIPELINE, tmp_path / "model.skops")
    out = tmp_path / "profile.json"
    code = profile_main(
        [
            "--data", str(tmp_path / "train.csv"), "--target", "label",
            "--model", str(tmp_path / "model.skops"), "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    profile = Profile.model_validate_json(out.read_text())
    assert [f.name for f in profile.features] == ["amount", "items", "country"]
    assert profile.prediction is not None and sum(profile.prediction.counts) == 1000
    assert "3 features (amount, items, country) and the predictions" in capsys.readouterr().out
    missing = profile_main(["--data", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert missing == 2 and "nope.csv" in capsys.readouterr().err


def test_the_server_reads_a_profile_pinned_by_sha256() -> None:
    data = build_profile(TRAIN).model_dump_json().encode()
    fsspec.filesystem("memory").pipe("/profiles/p.json", data)
    assert len(load_profile("memory://profiles/p.json", bytes_sha256(data)).features) == 3
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_profile("memory://profiles/p.json", "0" * 64)
    fsspec.filesystem("memory").pipe("/profiles/bad.json", b'{"features": 3}')
    with pytest.raises(
        ModelLoadError, match=re.escape("reference profile memory://profiles/bad.json")
    ):
        load_profile("memory://profiles/bad.json", None)


def samples(metrics: ServerMetrics, family: str) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {
        (s.labels["feature"], s.labels["bin"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
    }


def serving(estimator: Any, profile: Profile) -> ServerState:
    state = ServerState("m", "1", ServerMetrics("m", "1", "r1"), Faults(FaultConfig()), 1 << 20)
    loaded = describe(estimator, ModelSource(uri="memory"), "d" * 64)
    state.set_model(loaded.__class__(**{**loaded.__dict__, "profile": profile}))
    return state


async def test_live_inputs_and_predictions_are_counted_on_the_profile_s_bins(
    client_for: Factory,
) -> None:
    profile = build_profile(TRAIN, PIPELINE.predict(TRAIN))
    state = serving(PIPELINE, profile)
    client = await client_for(state)
    live = TRAIN.iloc[:40].assign(country=["FR"] * 39 + ["JP"])
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "amount", "datatype": "FP64", "shape": [40], "data": live["amount"].tolist()},
            {"name": "items", "datatype": "INT64", "shape": [40], "data": live["items"].tolist()},
            {
                "name": "country",
                "datatype": "BYTES",
                "shape": [40],
                "data": live["country"].tolist(),
            },
        ],
    }
    assert (await client.post("/v2/models/m/infer", json=body)).status == 200
    counted = samples(state.metrics, "model_input_bin")
    assert counted[("country", "0")] == 39  # FR
    assert counted[("country", "3")] == 1  # JP: the other values' bin
    assert sum(v for (f, _), v in counted.items() if f == "amount") == 40
    amount = profile.features[0]
    expected = np.bincount(np.searchsorted(amount.edges, live["amount"]), minlength=amount.bins)
    assert [counted[("amount", str(b))] for b in range(amount.bins)] == expected.tolist()
    predicted = PIPELINE.predict(live)
    prediction = profile.prediction
    assert prediction is not None
    for b, label in enumerate(prediction.categories):
        assert counted[(PREDICTION, str(b))] == int((predicted == label).sum())
    reference = samples(state.metrics, "model_input_reference_ratio")
    assert reference[("country", "0")] == pytest.approx(profile.features[2].fractions()[0])


async def test_a_matrix_model_s_columns_are_counted_by_position(client_for: Factory) -> None:
    x = RNG.normal(size=(200, 3))
    model = LinearRegression().fit(x, x.sum(axis=1))
    profile = build_profile(pd.DataFrame(x), model.predict(x), bins=4)
    state = serving(model, profile)
    client = await client_for(state)
    rows = x[:10]
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [10, 3], "data": rows.tolist()}]}
    assert (await client.post("/v2/models/m/infer", json=body)).status == 200
    counted = samples(state.metrics, "model_input_bin")
    for i, feature in enumerate(profile.features):
        got = [counted[(feature.name, str(b))] for b in range(feature.bins)]
        assert got == np.bincount(np.searchsorted(feature.edges, rows[:, i]), minlength=4).tolist()
    assert sum(v for (f, _), v in counted.items() if f == PREDICTION) == 10
    json.dumps(profile.model_dump())  # a plain JSON document
