"""The benchmarks `moa eval` knows, by name. A benchmark is one module with one
`moa.evals.benchmark.Benchmark` class, and one line here."""

from __future__ import annotations

import difflib
import importlib

from moa.errors import ConfigError
from moa.evals.benchmark import Benchmark

__all__ = ["BENCHMARKS", "benchmark_class"]

BENCHMARKS: dict[str, str] = {
    "gsm8k": "moa.evals.gsm8k:GSM8K",
    "humaneval": "moa.evals.humaneval:HumanEval",
    "ifbench": "moa.evals.ifbench:IFBench",
    "ifeval": "moa.evals.ifeval:IFEval",
    "bfcl": "moa.evals.bfcl:BFCL",
    "pairwise": "moa.evals.pairwise:Pairwise",
    "mt-bench": "moa.evals.mt_bench:MTBench",
}


def benchmark_class(name: str) -> type[Benchmark]:
    """The class of the benchmark registered as `name`."""
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, BENCHMARKS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown benchmark {name!r}{hint} (known: {', '.join(BENCHMARKS)})")
    module, _, attr = BENCHMARKS[name].partition(":")
    cls: type[Benchmark] = getattr(importlib.import_module(module), attr)
    return cls
