"""The final rules: how the last layer's answers become one answer. See `base` for what a rule
is and `registry` for the built-in ones (synthesize, vote, rank, first, agreement, usc,
behaviour, auto)."""

from moa.strategies.finals.base import RULES, FinalRule, RuleField, dump_rule, parse_rule, register
from moa.strategies.finals.registry import BUILT_IN

__all__ = ["BUILT_IN", "RULES", "FinalRule", "RuleField", "dump_rule", "parse_rule", "register"]
