"""Counters for a bounded set of label pairs in a worker's shared metric row.

Some counts belong to another revision than the server's own: ground truth for a prediction
another revision made (server.feedback_metrics), a candidate's answers to mirrored requests
(server.shadow_metrics). The label comes with the data, so its cardinality is bounded here:
`slots` per worker; a new label takes the least recently used slot (a counter reset for that
series, which Prometheus's rate() takes in its stride).

Row layout (float64): [use clock, slot 0, slot 1, ...]; a slot is [last use, counters..,
the two label values as bytes]. A scrape adds up the slots of every worker by label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelrollout.server.feedback_token import MAX_LABEL_BYTES

# (version, revision) for feedback, (stable revision, candidate revision) for shadow traffic.
Label = tuple[str, str]

_NAME_FLOATS = 2 * (MAX_LABEL_BYTES + 1) // 8  # two label values, each 1 + 63 bytes


def row_length(slots: int, counters: int) -> int:
    return 1 + slots * (1 + counters + _NAME_FLOATS)


class RevisionSlots:
    """One worker's slots in `row` (a view into its shared metric row)."""

    def __init__(self, row: np.ndarray[Any, Any], slots: int, counters: int) -> None:
        self._row = row
        self._counters = counters
        self._slots = row[1:].reshape(slots, 1 + counters + _NAME_FLOATS)

    def counters(self, label: Label) -> np.ndarray[Any, Any]:
        """The label's counters (a view to add to), taking a slot for a new label."""
        self._row[0] += 1
        used = [i for i in range(len(self._slots)) if self._slots[i, 0] > 0]
        index = next((i for i in used if _label(self._slots[i], self._counters) == label), None)
        if index is None:
            free = [i for i in range(len(self._slots)) if i not in used]
            index = free[0] if free else int(np.argmin(self._slots[:, 0]))
            self._slots[index] = 0.0
            _write_label(self._slots[index], self._counters, label)
        self._slots[index, 0] = self._row[0]
        view: np.ndarray[Any, Any] = self._slots[index, 1 : 1 + self._counters]
        return view


def totals(
    rows: Sequence[np.ndarray[Any, Any]], slots: int, counters: int
) -> dict[Label, np.ndarray[Any, Any]]:
    """Every label's counters summed over the workers' rows."""
    out: dict[Label, np.ndarray[Any, Any]] = {}
    for row in rows:
        for slot in row[1:].reshape(slots, 1 + counters + _NAME_FLOATS):
            if slot[0] > 0:
                label = _label(slot, counters)
                out[label] = out.get(label, 0.0) + slot[1 : 1 + counters]
    return out


def _label(slot: np.ndarray[Any, Any], counters: int) -> Label:
    raw = slot[1 + counters :].view(np.uint8).tobytes()
    half = MAX_LABEL_BYTES + 1
    return _unpack(raw[:half]), _unpack(raw[half:])


def _write_label(slot: np.ndarray[Any, Any], counters: int, label: Label) -> None:
    raw = b"".join(_pack(text) for text in label)
    slot[1 + counters :].view(np.uint8)[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)


def _pack(text: str) -> bytes:
    data = text.encode()[:MAX_LABEL_BYTES]
    return bytes([len(data)]) + data.ljust(MAX_LABEL_BYTES, b"\0")


def _unpack(raw: bytes) -> str:
    return raw[1 : 1 + raw[0]].decode(errors="replace")
