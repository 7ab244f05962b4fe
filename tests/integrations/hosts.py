"""What the integrations' tests share besides fixtures: the recipes they write, and the
commands of this environment."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

SMOL = "local:smollm2-135m-instruct"

DUO = """\
description: two fake proposers and a fake aggregator
layers:
  - [fake:a, fake:b]
aggregator: fake:agg
"""

TINY = f"""\
description: SmolLM2 twice, then aggregating (a real local model, small and quick)
layers:
  - [{SMOL}, {SMOL}]
aggregator: {SMOL}
proposer_defaults: {{temperature: 0, max_tokens: 12}}
aggregator_defaults: {{temperature: 0, max_tokens: 12}}
"""

PRICED = """\
layers:
  - [fake:a, fake:b]
aggregator: fake:agg
providers:
  fake:
    prices:
      a: {input: 1.0, output: 2.0}
      b: {input: 1.5, output: 2.5}
      agg: {input: 3.0, output: 4.0}
"""


def free_port() -> int:
    """A port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tool(name: str) -> str:
    """A console script of this environment (llm, moa, ...)."""
    return str(Path(sys.executable).with_name(name))
