"""The built-in final rules, registered by name. A new rule is one file in this package and
one entry here (or `moa.strategies.finals.register(MyRule)` from outside)."""

from __future__ import annotations

from moa.strategies.finals.agreement import Agreement
from moa.strategies.finals.auto import Auto
from moa.strategies.finals.base import RULES, register
from moa.strategies.finals.behaviour import Behaviour
from moa.strategies.finals.checks import Checks
from moa.strategies.finals.first import First
from moa.strategies.finals.rank import Rank
from moa.strategies.finals.synthesize import Synthesize
from moa.strategies.finals.tool_vote import ToolVote
from moa.strategies.finals.usc import Usc
from moa.strategies.finals.vote import Vote

__all__ = ["BUILT_IN", "RULES"]

BUILT_IN = (Synthesize, Vote, Rank, First, Agreement, Usc, Behaviour, Checks, Auto, ToolVote)

for _rule in BUILT_IN:
    register(_rule)
