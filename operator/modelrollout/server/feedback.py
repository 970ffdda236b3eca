"""Ground truth reported for earlier predictions: `POST /v2/models/{name}/feedback`.

    {"feedback": [{"token": "<a response's parameters.feedback_token>",
                   "truth": ["fraud", null, "ok"]}]}

`truth` has one entry per row of the request that the token came from, `null` for rows whose
truth is not known yet (report them later with the same token). Class labels are the model's
own (`"fraud"`, or `1` for integer classes); a regressor's are numbers. The whole body is
checked before anything is counted: one bad item refuses it all with a 400 naming the item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelrollout.server.datatypes import RequestError
from modelrollout.server.feedback_token import Issued, TokenError, classes_digest, read

MAX_ITEMS = 1000
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Labelled:
    """The labelled rows of one earlier response."""

    version: str
    revision: str
    predicted: np.ndarray[Any, Any]  # class indices or values
    truth: np.ndarray[Any, Any]  # the same kind, one per labelled row


class ClassIndex:
    """Class label -> index in `classes_`, without letting `True` stand for `1` or "1" for 1."""

    def __init__(self, classes: Sequence[Any]) -> None:
        self.digest = classes_digest(classes)
        self._index = {
            _key(c.item() if isinstance(c, np.generic) else c): i for i, c in enumerate(classes)
        }
        self._shown = [str(c) for c in classes[:10]]

    def __call__(self, label: object, where: str) -> int:
        index = self._index.get(_key(label))
        if index is None:
            raise RequestError(
                f"{where}: {label!r} is not one of the model's classes {self._shown}"
            )
        return index


def decode_feedback(body: bytes, key: bytes, classes: ClassIndex | None) -> list[Labelled]:
    """Every item of the body, checked; RequestError naming the first bad one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"body is not JSON: {exc}") from None
    items = doc.get("feedback") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RequestError('body must be {"feedback": [{"token": ..., "truth": [...]}, ...]}')
    if len(items) > MAX_ITEMS:
        raise RequestError(f"feedback: {len(items)} items, over the limit of {MAX_ITEMS}")
    labelled = [_item(item, f"feedback[{i}]", key, classes) for i, item in enumerate(items)]
    rows = sum(len(x.truth) for x in labelled)
    if rows > MAX_ROWS:
        raise RequestError(f"feedback: {rows} labelled rows, over the limit of {MAX_ROWS}")
    return labelled


def _item(item: object, where: str, key: bytes, classes: ClassIndex | None) -> Labelled:
    if not isinstance(item, dict) or set(item) != {"token", "truth"}:
        raise RequestError(f'{where}: must be {{"token": ..., "truth": [...]}}')
    try:
        issued = read(key, item["token"])
    except TokenError as exc:
        raise RequestError(f"{where}.token: {exc}") from None
    truth = item["truth"]
    if not isinstance(truth, list) or len(truth) != len(issued.predicted):
        raise RequestError(
            f"{where}.truth: must be a list with one entry per row of the response "
            f"({len(issued.predicted)}), null where not known"
        )
    known = {i: value for i, value in enumerate(truth) if value is not None}
    return Labelled(
        issued.version,
        issued.revision,
        issued.predicted[list(known)],
        _truth(issued, known, f"{where}.truth", classes),
    )


def _truth(
    issued: Issued, known: dict[int, Any], where: str, classes: ClassIndex | None
) -> np.ndarray[Any, Any]:
    """The known rows' truth as class indices or values (`known`: row -> reported value)."""
    values = list(known.values())
    if (issued.classes_digest is None) != (classes is None):
        made = "a regressor" if issued.classes_digest is None else "a classifier"
        raise RequestError(f"{where}: the token is from {made}, this model is not")
    if classes is None:
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise RequestError(f"{where}: a regressor's truth must be numbers")
        out = np.asarray(values, dtype=np.float64)
        if not np.isfinite(out).all():
            raise RequestError(f"{where}: truth must be finite numbers")
        return out
    if issued.classes_digest != classes.digest:
        raise RequestError(
            f"{where}: the prediction was made by revision {issued.revision!r}, whose classes "
            "differ from this server's: it cannot be counted here"
        )
    return np.asarray([classes(v, f"{where}[{i}]") for i, v in enumerate(values)], dtype=np.intp)


def _key(label: object) -> tuple[str, object]:
    if isinstance(label, bool):
        return ("bool", label)
    if isinstance(label, int | float):
        return ("number", float(label))
    if isinstance(label, str):
        return ("str", label)
    return ("other", repr(label))
