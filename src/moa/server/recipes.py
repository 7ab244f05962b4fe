"""The recipes a server offers as models, and one MoA per recipe, made and checked at startup.

Every recipe's models are resolved when the server starts (local files pulled when `pull`,
else only looked for), so that no request ever starts a download: a recipe that cannot run
answers at once with the reason (500, or 503 for a model that is not there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moa.backends.base import Backend
from moa.backends.fake import FakeBackend
from moa.engine import MoA
from moa.errors import ConfigError, MoAError, ModelNotAvailable
from moa.plan import Plan, compile_recipe
from moa.recipe import SUFFIXES, Recipe, builtin_names
from moa.redact import redact_urls
from moa.server.errors import ApiError, from_setup_error

DEMO = "fake"
"""The built-in recipe of fake models: served only when asked (`demo`)."""

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
    plan: Plan | None = None
    """The recipe compiled, once (its models, its layers for /v1/models, its MoA)."""
    error: MoAError | None = None

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"id": self.id, "object": "model", "created": self.created}
        info["owned_by"] = self.owned_by
        if (plan := self.plan) is not None:
            info["moa"] = {
                "description": plan.recipe.description,
                "layers": [[a.label for a in layer.agents] for layer in plan.layers],
                "aggregator": plan.aggregator.label,
            }
        else:
            info["moa"] = {}
        if self.error is not None:
            info["moa"]["error"] = str(self.error)
        return info


class Recipes:
    """Built-in recipes, then the files of `recipes_dir`, then `extra`: later ones win.

    A file is offered under its recipe's `name` and under its file name without suffix. The
    built-in `fake` recipe is offered only with `demo`. `pull` fetches missing local models
    now; without it a recipe whose model is not there answers 503.
    """

    def __init__(
        self,
        *,
        recipes_dir: Path | None = None,
        extra: Mapping[str, RecipeSource] | None = None,
        backends: Mapping[str, Backend] | None = None,
        env: Mapping[str, str] | None = None,
        demo: bool = False,
        pull: bool = False,
    ) -> None:
        # the server's own fake keeps no record of requests: its memory stays bounded
        self._backends = {"fake": FakeBackend(record=0), **(backends or {})}
        self._env = env
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._moas: dict[str, MoA] = {}
        now = int(time.time())
        for name in builtin_names():
            if name != DEMO or demo:
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
        failed = self._pull() if pull else {}
        for entry in self._entries.values():
            self._prepare(entry, failed)

    def _pull(self) -> dict[str, str]:
        """Fetch every local model of the served recipes, each once; {ref: why} for failures."""
        from moa import catalog

        refs = {r for e in self._entries.values() if e.plan for r in e.plan.models}
        tried: dict[str, str] = {}  # each model once: name -> why it failed ("" if it did not)
        failed: dict[str, str] = {}
        for ref in sorted(r for r in refs if r.lower().startswith("local:")):
            try:
                name = catalog.resolve(ref).name
            except MoAError:
                continue  # an unknown name: the recipe's own check says so
            if name not in tried:
                tried[name] = ""
                if not catalog.is_pulled(name):
                    log.info(
                        "pulling local model %s for the served recipes (--no-pull skips)", name
                    )
                try:
                    catalog.ensure(name, auto_pull=True, progress=log.info)
                except (MoAError, OSError) as exc:
                    log.error("local model %s could not be fetched: %s", name, exc)
                    tried[name] = f"local model {name!r} could not be fetched at startup: {exc}"
            if tried[name]:
                failed[ref] = tried[name]
        return failed

    def _prepare(self, entry: Entry, failed: Mapping[str, str]) -> None:
        """Make the recipe's MoA and find its models, or keep the reason it cannot run."""
        if entry.plan is None:
            return
        try:
            moa = MoA(entry.plan, backends=self._backends, env=self._env, auto_pull=False)
            moa.prepare()
        except ModelNotAvailable as exc:
            why = [failed[ref] for ref in entry.plan.models if ref in failed]
            entry.error = ModelNotAvailable(why[0]) if why else exc
        except MoAError as exc:
            entry.error = exc
        else:
            self._moas[entry.id] = moa
            return
        log.warning(
            "recipe %s is listed but cannot run: %s", entry.id, redact_urls(str(entry.error))
        )

    def _add(self, name: str, source: RecipeSource, owner: str, created: int) -> None:
        entry = Entry(id=name, source=source, owned_by=owner, created=created)
        try:
            entry.plan = compile_recipe(source)
            entry.recipe = entry.plan.recipe
        except MoAError as exc:
            log.warning("recipe %s cannot be loaded: %s", name, redact_urls(str(exc)))
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
            shown = model if len(model) <= 64 else model[:64] + "..."
            raise ApiError(
                404,
                f"The model {shown!r} does not exist: GET /v1/models lists the recipes served",
                param="model",
                code="model_not_found",
            )
        return entry

    def moa(self, model: str) -> MoA:
        """The MoA of a recipe, made at startup; the reason it cannot run otherwise."""
        entry = self.find(model)
        made = self._moas.get(entry.id)
        if made is None:
            assert entry.error is not None
            raise from_setup_error(entry.error, entry.id)
        return made

    async def aclose(self) -> None:
        moas, self._moas = self._moas, {}
        for moa in moas.values():
            await moa.aclose()
