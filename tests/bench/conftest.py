"""Benchmarks are files named bench_*.py. pytest collects them only when asked for tests/bench (or one
of its files) explicitly, as `make bench` does, so `./dev test` never runs them. Each is also runnable
alone: `.venv/bin/python -m tests.bench.bench_NAME`."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    for arg in config.args:
        p = Path(str(arg).split("::")[0]).resolve()
        if p == HERE or HERE in p.parents:
            return True
    return False


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if file_path.name.startswith("bench_") and file_path.suffix == ".py" and _asked_for(parent.config):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
