"""The manual controls as people name them (kubectl modelrollout, Argo CD actions) and the status
field each one sets: one table for the CLI tests and the Argo CD action tests, written out here
rather than taken from the code under test."""

from __future__ import annotations

CONTROL_FIELDS = [
    ("promote", "promote"),
    ("promote-full", "promoteFull"),
    ("abort", "abort"),
    ("retry", "retry"),
]
