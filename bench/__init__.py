"""Benchmarks of Soft ATM, run with `python -m bench [NAME ...]` (see `bench.__main__`).

Each benchmark is a module with `run(args) -> None` (and optionally `add_arguments(parser)` for
options of its own). It prints its figures to stdout, one JSON object per line:
`{"name": ..., "value": ..., "unit": ...}`, plus `"baseline"` and `"ratio"` when the figure is
compared with a baseline measured in the same run. Progress and diagnostics go to stderr, so that
stdout can be piped straight into a file or a dashboard.

A benchmark sets up what it needs (scratch databases, tools) and removes it afterwards, also when
it fails; it raises `bench.common.BenchmarkError` when a figure cannot be trusted.
"""
