"""How a recipe turns its layers' answers into one answer: the `strategy:` section.

`config` holds the typed section, `votes` the pure parts (tallies, judges' output, the
aggregator's evidence), `base` the protocol between the engine and a strategy, `steps` the
recipe's strategy as steps. See `moa.strategies.config` for the recipe syntax.
"""

from moa.strategies.base import Answers, Final, Step, StepContext, judge_agent
from moa.strategies.config import (
    RANK_PROMPT,
    REVIEW_PROMPT,
    SEQ_NOTE,
    ByKind,
    Council,
    DecideEarly,
    EarlyStop,
    Rule,
    Select,
    Seq,
    Strategy,
)
from moa.strategies.steps import RecipeStrategy, build
from moa.strategies.votes import (
    Tally,
    aggregate_block,
    borda,
    evidence_text,
    parse_choice,
    parse_ranking,
    review_text,
    seq_rounds,
    tally,
)

__all__ = [
    "RANK_PROMPT",
    "REVIEW_PROMPT",
    "SEQ_NOTE",
    "Answers",
    "ByKind",
    "Council",
    "DecideEarly",
    "EarlyStop",
    "Final",
    "RecipeStrategy",
    "Rule",
    "Select",
    "Seq",
    "Step",
    "StepContext",
    "Strategy",
    "Tally",
    "aggregate_block",
    "borda",
    "build",
    "evidence_text",
    "judge_agent",
    "parse_choice",
    "parse_ranking",
    "review_text",
    "seq_rounds",
    "tally",
]
