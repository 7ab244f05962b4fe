"""IFEval (Zhou et al., 2023, arXiv 2311.07911): 541 prompts with 25 types of verifiable
instructions, scored by IFEval's checkers as the `if-verifiable` package ships them
(`moa.evals.checkers`); every prompt can be checked offline. The prompts ship in
`moa/evals/data/ifeval_input_data.jsonl` (google-research, Apache-2.0; see the NOTICE).

Splits: `dev` is the first half of the prompts by key in sorted (numeric) order, 271 prompts,
`held-out` the other 270.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from moa.evals import checkers
from moa.evals.instructions import InstructionBenchmark

__all__ = ["IFEval"]


@dataclass
class IFEval(InstructionBenchmark):
    """IFEval: the share of prompts (and of instructions) whose verifiable constraints each
    recipe follows, strict and loose, by IFEval's checkers (if-verifiable); no judge model."""

    name: ClassVar[str] = "ifeval"
    title: ClassVar[str] = "IFEval"
    data_help: ClassVar[str | None] = "IFEval JSONL (default: shipped)."
    suite: ClassVar[checkers.Suite] = "ifeval"
    file: ClassVar[str] = "ifeval_input_data.jsonl"
    source: ClassVar[str] = "google-research instruction_following_eval, Apache-2.0"

    def order(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda row: int(row["key"]))
