"""The recipes a server offers as models, and one MoA per recipe, made on first use."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa.backends.base import Backend
from moa.engine import MoA
from moa.errors import ConfigError, MoAError
from moa.plan import compile_recipe
from moa.recipe import SUFFIXES, Recipe, builtin_names, load_recipe
from moa.server.errors import ApiError, from_setup_error

log = logging.getLogger("moa.server")

RecipeSource = str | Path | Recipe | Mapping[str, Any]


@dataclass
class Entry:
    """One model of /v1/models: where its recipe comes from, and the recipe if it loaded."""

    id: str
    source: RecipeSource
    owned_by: str
    created: int
    recipe: Recipe | None = None
    error: MoAError | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"id": self.id, "object": "model", "created": self.created}
        info["owned_by"] = self.owned_by
        if self.recipe is not None:
            plan = compile_recipe(self.recipe)
            info["moa"] = {
                "description": self.recipe.description,
                "layers": [[a.label for a in layer.agents] for layer in plan.layers],
                "aggregator": plan.aggregator.label,
            }
        else:
            info["moa"] = {"error": str(self.error)}
        return info


class Recipes:
    """Built-in recipes, then the files of `recipes_dir`, then `extra`: later ones win.

    A file is offered under its recipe's `name` and under its file name without suffix.
    """

    def __init__(
        self,
        *,
        recipes_dir: Path | None = None,
        extra: Mapping[str, RecipeSource] | None = None,
        backends: Mapping[str, Backend] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._backends = backends
        self._env = env
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._moas: dict[str, MoA] = {}
        now = int(time.time())
        for name in builtin_names():
            self._add(name, name, "moa", now)
        if recipes_dir is not None:
            if not Path(recipes_dir).is_dir():
                raise ConfigError(f"{recipes_dir}: not a folder of recipe files")
            files = sorted(p for p in Path(recipes_dir).iterdir() if p.suffix.lower() in SUFFIXES)
            for path in files:
                self._add(path.stem, path, "user", int(path.stat().st_mtime))
        for name, source in (extra or {}).items():
            if isinstance(source, Mapping) and "name" not in source:
                source = {**source, "name": name}
            self._add(name, source, "user", now)

    def _add(self, name: str, source: RecipeSource, owner: str, created: int) -> None:
        entry = Entry(id=name, source=source, owned_by=owner, created=created)
        try:
            entry.recipe = load_recipe(source)
        except MoAError as exc:
            log.warning("recipe %s cannot be loaded: %s", name, exc)
            entry.error = exc
        ids = [name]
        if isinstance(source, Path) and entry.recipe is not None:
            entry.id = entry.recipe.name
            ids = [entry.recipe.name, name]
        for key in ids:
            self._entries.pop(self._aliases.get(key, key), None)
        self._entries[entry.id] = entry
        for key in ids:
            self._aliases[key] = entry.id

    def list(self) -> list[Entry]:
        return list(self._entries.values())

    def find(self, model: str) -> Entry:
        entry = self._entries.get(self._aliases.get(model, model))
        if entry is None:
            names = ", ".join(sorted(self._entries))
            raise ApiError(
                404,
                f"The model '{model}' does not exist: models are the recipes {names}",
                param="model",
                code="model_not_found",
            )
        return entry

    async def moa(self, model: str) -> MoA:
        """The MoA of a recipe, built once; local model files are fetched before the first run."""
        entry = self.find(model)
        async with entry.lock:
            made = self._moas.get(entry.id)
            if made is not None:
                return made
            if entry.error is not None:
                raise from_setup_error(entry.error, entry.id)
            assert entry.recipe is not None
            try:
                moa = MoA(entry.recipe, backends=self._backends, env=self._env)
            except MoAError as exc:
                log.error("recipe %s cannot run: %s", entry.id, exc)
                raise from_setup_error(exc, entry.id) from None
            try:
                await asyncio.to_thread(moa.prepare)
            except MoAError as exc:
                log.error("recipe %s cannot run: %s", entry.id, exc)
                await moa.aclose()
                raise from_setup_error(exc, entry.id) from None
            self._moas[entry.id] = moa
            return moa

    async def aclose(self) -> None:
        moas, self._moas = self._moas, {}
        for moa in moas.values():
            await moa.aclose()
