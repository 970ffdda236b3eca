"""Measuring metrics for analysis runs (the shell's side; judging is in core/metric_judging.py).

hook.py       the shell's handle: AnalysisHook.measure_if_due, on the operator's event loop
runner.py     AnalysisRunner: per metric, fetch what the core asks for, then the core judges
provider.py   the metric-provider seam (MetricProvider, MetricSource) and its errors
registry.py   which provider kind an AnalysisSpec names; one registration per provider
prometheus_provider.py, prometheus.py, queries.py, batch.py   the Prometheus provider: client
              pool, credentials and TLS, PromQL, query batching
"""
