"""`make demo`: the whole product on one machine (see demo/run.py)."""
