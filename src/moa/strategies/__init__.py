"""How a recipe turns its layers' answers into one answer: the `strategy:` section, and all the
code that chooses an answer.

    config      the typed section (legacy spellings rewritten)
    base        the protocol between the engine and a strategy (`Step`, `StepContext`)
    steps       the recipe's strategy as steps
    finals/     the final rules, one file each, registered by name
    layer       drop, council review, pruning, early stop
    aggregate   what the aggregator is shown besides the answers (evidence, review, Seq)
    tally       the one tally of final answers, and the early decision of a vote
    read        final answers out of text, and the kind of a set of answers
    agreement   the answer most in agreement with the others
    judges      judges' prompts and the reading of their answers (ranker, reviewers, USC)
    behaviour   code chosen by what it does on the prompt's examples, in the sandbox
"""

from moa.strategies.base import AggregatorInput, Answers, SideCall, Step, StepContext
from moa.strategies.config import Council, Prune, Seq, StopLayers, Strategy
from moa.strategies.finals import RULES, FinalRule, parse_rule, register
from moa.strategies.steps import RecipeStrategy, build

__all__ = [
    "RULES",
    "AggregatorInput",
    "Answers",
    "Council",
    "FinalRule",
    "Prune",
    "RecipeStrategy",
    "Seq",
    "SideCall",
    "Step",
    "StepContext",
    "StopLayers",
    "Strategy",
    "build",
    "parse_rule",
    "register",
]
