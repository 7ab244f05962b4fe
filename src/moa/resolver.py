"""Turn model references into (backend, model name) pairs, sharing one backend per endpoint."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import replace

from moa.backends.base import Backend
from moa.backends.registry import REGISTRY
from moa.errors import ConfigError, MissingKeyError, ModelRefError
from moa.providers import PRESETS, ModelRef, Provider, parse_ref
from moa.redact import redact_url, redact_urls


class Resolver:
    """Resolves `provider:model` references and owns the backends it creates.

    `backends` overrides a provider with a ready backend (`{"fake": FakeBackend()}`);
    `providers` adds OpenAI-compatible providers by configuration; `env` replaces
    `os.environ` (for keys and base URLs). Local models are pulled on first use when
    `auto_pull` is set. `wrap(provider, backend)` may wrap every backend made here (a cache,
    a recorder).
    """

    def __init__(
        self,
        *,
        backends: Mapping[str, Backend] | None = None,
        providers: Mapping[str, Provider] | None = None,
        env: Mapping[str, str] | None = None,
        auto_pull: bool = True,
        progress: Callable[[str], None] | None = None,
        openai_max_retries: int = 0,
        wrap: Callable[[str, Backend], Backend] | None = None,
    ) -> None:
        self._given = dict(backends or {})
        self._providers = {**PRESETS, **(providers or {})}
        self._env = os.environ if env is None else env
        self._auto_pull = auto_pull
        self._progress = progress
        self._max_retries = openai_max_retries
        self._made: dict[tuple[str, str | None, str | None], Backend] = {}
        self._wrap = wrap

    def with_providers(self, providers: Mapping[str, Provider]) -> Resolver:
        """A resolver that also knows `providers` (a recipe's), merged over the known ones,
        sharing this one's backends; this one is unchanged. Itself when there are none."""
        if not providers:
            return self
        child = copy.copy(self)
        child._providers = dict(self._providers)
        for provider in providers.values():
            base = child._providers.get(provider.name)
            if base is not None:
                provider = replace(
                    base,
                    base_url=provider.base_url or base.base_url,
                    api_key_env=provider.api_key_env or base.api_key_env,
                    send_key_to_base_url=provider.send_key_to_base_url or base.send_key_to_base_url,
                    context_windows={
                        **(base.context_windows or {}),
                        **(provider.context_windows or {}),
                    },
                )
            child._providers[provider.name] = provider
        return child

    def parse(self, ref: str) -> ModelRef:
        return parse_ref(ref, self._providers)

    def provider_of(self, ref: str) -> str:
        return self.parse(ref).provider

    def check(self, ref: str) -> None:
        """Raise the error that resolving `ref` would raise, without creating anything."""
        parsed = self.parse(ref)
        if parsed.provider in self._given or parsed.provider in REGISTRY:
            return
        self._provider_and_key(parsed, ref)

    def _provider_and_key(self, parsed: ModelRef, ref: str) -> tuple[Provider, str | None]:
        provider = self._providers.get(parsed.provider)
        if provider is None:
            raise ModelRefError(f"{ref!r}: unknown provider '{parsed.provider}'")
        key = self._env.get(provider.api_key_env) if provider.api_key_env else None
        if provider.key_required and not key:
            raise MissingKeyError(ref, provider.api_key_env or f"{provider.name.upper()}_API_KEY")
        url = parsed.base_url or provider.url(self._env)
        if url is None:
            where = f" or set {provider.base_url_env}" if provider.base_url_env else ""
            raise ModelRefError(
                f"{ref!r}: provider '{provider.name}' has no base URL; add @URL{where}, as in "
                f"{provider.name}:MODEL@http://host:8000/v1"
            )
        if key:
            self._check_destination(provider, url, ref)
        return provider, key

    def _check_destination(self, provider: Provider, url: str, ref: str) -> None:
        """Refuse to send a built-in provider's key to a URL that is not that provider's own,
        unless the recipe says so (`send_key_to_base_url`). A provider with no URL of its own
        (vllm: a server the user runs) has its key go where the user points it: the `@URL` of
        the reference or its URL variable (VLLM_BASE_URL)."""
        owner = next((p for p in PRESETS.values() if p.api_key_env == provider.api_key_env), None)
        if owner is None or provider.send_key_to_base_url or owner.base_url is None:
            return
        own = {u.rstrip("/") for u in (owner.base_url, owner.url(self._env)) if u}
        if url.rstrip("/") not in own:
            raise ConfigError(
                f"{redact_urls(ref)}: refusing to send {owner.api_key_env} (the key of "
                f"'{owner.name}') to {redact_url(url)}; if you trust that URL, set "
                f"providers.{provider.name}.send_key_to_base_url: true in the recipe"
            )

    def resolve(self, ref: str) -> tuple[Backend, str]:
        parsed = self.parse(ref)
        if parsed.provider in self._given:
            return self._given[parsed.provider], parsed.model
        if (entry := REGISTRY.get(parsed.provider)) is not None:
            located = entry.locate(parsed.model, self._auto_pull, self._progress)
            backend = self._shared((entry.backend, None, None), entry.make)
            if located.n_ctx is not None:
                backend.configure_model(located.model, n_ctx=located.n_ctx)
            return backend, located.model
        provider, key = self._provider_and_key(parsed, ref)
        url = parsed.base_url or provider.url(self._env)
        assert url is not None

        def make() -> Backend:
            from moa.backends.openai_compat import OpenAICompatBackend

            return OpenAICompatBackend(
                base_url=url,
                api_key=key,
                name=provider.name,
                max_retries=self._max_retries,
                context_windows=provider.context_windows,
            )

        return self._shared((provider.name, url, provider.api_key_env), make), parsed.model

    def _shared(
        self, key: tuple[str, str | None, str | None], make: Callable[[], Backend]
    ) -> Backend:
        if key not in self._made:
            backend = make()
            self._made[key] = self._wrap(key[0], backend) if self._wrap else backend
        return self._made[key]

    async def aclose(self) -> None:
        made = dict(self._made)
        self._made.clear()  # in place: resolvers made by with_providers share it
        for backend in made.values():
            await backend.aclose()
