"""The backends served in this process, registered in one place.

    fake:NAME        scripted answers (moa.backends.fake), no tokens spent
    local:NAME       a catalog model (moa.catalog), pulled from the package registry
    gguf:PATH        any GGUF file
    llm:MODEL        a model of simonw/llm, with its plugins and stored keys (the llm extra)

An entry says which shared backend serves it (`local` and `gguf` share one llama.cpp
backend, so a file is loaded once) and how a model name becomes the name the backend is
given, with the context size to load it with. A new in-process backend is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moa.backends.base import Backend
from moa.errors import ModelRefError

__all__ = ["IN_PROCESS", "REGISTRY", "InProcess", "Located"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Located:
    """What the backend is asked for, and the context size to load it with (None: its own)."""

    model: str
    n_ctx: int | None = None


@dataclass(frozen=True)
class InProcess:
    name: str
    backend: str
    """The key of the backend instance it shares with other entries."""
    make: Callable[[], Backend]
    locate: Callable[[str, bool, Progress | None], Located]
    """locate(model, auto_pull, progress): the model as the backend names it."""


def _fake() -> Backend:
    from moa.backends.fake import FakeBackend

    return FakeBackend()


def _llama() -> Backend:
    from moa.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend()


def _llm() -> Backend:
    from moa.backends.llm import LlmBackend

    return LlmBackend()


def _as_is(model: str, auto_pull: bool, progress: Progress | None) -> Located:
    return Located(model)


def _catalog(model: str, auto_pull: bool, progress: Progress | None) -> Located:
    from moa import catalog

    entry = catalog.resolve(model)
    path = catalog.ensure(entry.name, auto_pull=auto_pull, progress=progress)
    return Located(str(path), entry.n_ctx)


def _file(model: str, auto_pull: bool, progress: Progress | None) -> Located:
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelRefError(f"gguf:{model}: no such file")
    return Located(str(path))


def _llm_model(model: str, auto_pull: bool, progress: Progress | None) -> Located:
    from moa.backends.llm import locate

    return Located(locate(model))


REGISTRY: dict[str, InProcess] = {
    e.name: e
    for e in (
        InProcess("fake", "fake", _fake, _as_is),
        InProcess("local", "local", _llama, _catalog),
        InProcess("gguf", "local", _llama, _file),
        InProcess("llm", "llm", _llm, _llm_model),
    )
}
IN_PROCESS: tuple[str, ...] = tuple(REGISTRY)
