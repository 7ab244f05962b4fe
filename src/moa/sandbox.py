"""Run generated Python code in a child process with limits, and say what happened.

    outcome = run_python("print(sum(range(10)))", limits=SandboxLimits(timeout_s=5))
    outcome.status, outcome.stdout      # ('ok', '45\\n')

What is isolated, and how (each step happens in the child, before the code runs):

- **Time**: a wall-clock timeout kills the whole process group (`timeout`); RLIMIT_CPU bounds
  CPU seconds too (the kernel kills the child: also `timeout`).
- **Memory**: RLIMIT_AS bounds the address space; an allocation past it raises MemoryError
  (`memory`). RLIMIT_FSIZE bounds every file the child writes, its captured output included;
  RLIMIT_CORE is 0; RLIMIT_NPROC bounds processes once the child is not root.
- **Files**: the working directory is a new empty temporary directory, removed afterwards. When
  the parent runs as root, the child drops to the `nobody` user (keeping only the capability to
  read any file, so an interpreter installed under /root still loads), and can write only where
  anyone may (that directory, /tmp, /dev/shm); otherwise it keeps the caller's user and file
  permissions, and an absolute path can reach anything the caller can write.
- **Network**: the child enters a new network namespace (no interface but a loopback that is
  down) when the kernel lets it (as root, or with unprivileged user namespaces); `isolation()`
  says which. Where it cannot, a guard replaces `socket.socket` and friends with a function that
  raises, which stops ordinary code but not code that reaches the C library itself (ctypes).
- **Environment**: the child gets an empty environment but for PATH, and runs Python with -I -S
  (no PYTHON* variables, no user or site packages: the standard library only).

Not isolated: reading files (the child sees the file system with its user's permissions), the
process table, and shared memory; a process that starts its own session (setsid) escapes the
group kill at the timeout (RLIMIT_CPU still bounds its CPU time); there is no seccomp filter.
This keeps honest mistakes of generated code (loops, huge allocations, stray writes, a network
call) from harming the run; it is not a boundary against code written to escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Outcome", "SandboxLimits", "arun_python", "isolation", "run_python"]

Status = Literal["ok", "error", "timeout", "memory"]


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """What one run may use. `cpu_s` defaults to the timeout rounded up, plus one."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    cpu_s: int | None = None
    file_mb: int = 16
    processes: int = 64
    output_chars: int = 20_000
    """How much of stdout and of stderr is kept (each)."""


@dataclass(frozen=True)
class Outcome:
    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    network: str
    """'namespace' or 'guard': how the network was cut off for this run ('unknown' if the child
    died before it could say)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# The child's first steps, before it runs the code: limits, namespace, user, guard.
_BOOT = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
for name, value in cfg["limits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
net = "guard"
if cfg["namespace"]:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) == 0:  # CLONE_NEWNET
        net = "namespace"
if os.geteuid() == 0 and cfg["drop_to"] is not None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS: keep capabilities across setuid
    os.setgroups([])
    os.setgid(cfg["drop_to"][1])
    os.setuid(cfg["drop_to"][0])
    # keep only CAP_DAC_READ_SEARCH (read any file: the interpreter may live under /root)
    head = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)(1 << 2, 1 << 2, 0, 0, 0, 0)
    libc.capset(head, data)
    resource.setrlimit(resource.RLIMIT_NPROC, (cfg["processes"], cfg["processes"]))
os.write(cfg["report_fd"], net.encode())
os.close(cfg["report_fd"])
if net == "guard":
    import socket
    def _blocked(*args, **kwargs):
        raise OSError(101, "network access is blocked in the sandbox")
    for _name in ("socket", "create_connection", "create_server", "socketpair", "fromfd"):
        setattr(socket, _name, _blocked)
    import _socket
    _socket.socket = _blocked
_name = "__main__" if cfg["main"] else "__sandbox__"
del cfg, net
sys.argv = ["main.py"]
with open("main.py", encoding="utf-8") as _f:
    _code = compile(_f.read(), "main.py", "exec")
del _f
exec(_code, {"__name__": _name, "__file__": "main.py", "__builtins__": __builtins__})
"""


@functools.cache
def _nobody() -> tuple[int, int] | None:
    try:
        import pwd

        entry = pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return None
    return entry.pw_uid, entry.pw_gid


@functools.cache
def isolation() -> dict[str, str]:
    """How this machine isolates a run: {'network': 'namespace' | 'guard', 'user': 'nobody' |
    'caller'}. Probed once, with a real child."""
    probe = run_python("pass", limits=SandboxLimits(timeout_s=10))
    user = "nobody" if os.geteuid() == 0 and _nobody() is not None else "caller"
    return {"network": probe.network, "user": user}


def _rlimits(limits: SandboxLimits) -> dict[str, int]:
    cpu = limits.cpu_s if limits.cpu_s is not None else int(limits.timeout_s) + 2
    return {
        "RLIMIT_AS": limits.memory_mb * 1024 * 1024,
        "RLIMIT_CPU": max(1, cpu),
        "RLIMIT_FSIZE": limits.file_mb * 1024 * 1024,
        "RLIMIT_CORE": 0,
    }


def _read(path: Path, keep: int) -> str:
    with path.open("rb") as f:
        data = f.read(keep * 4)
    return data.decode("utf-8", errors="replace")[:keep]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _status(returncode: int | None, stderr: str, timed_out: bool) -> Status:
    if timed_out or returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "timeout"
    if returncode == 0:
        return "ok"
    last = stderr.strip().splitlines()[-1:] or [""]
    if "MemoryError" in last[0] or returncode == -signal.SIGSEGV:
        return "memory"
    return "error"


def run_python(
    code: str, *, limits: SandboxLimits | None = None, main: bool = True, namespace: bool = True
) -> Outcome:
    """Run `code` as a Python script in a fresh sandboxed child (see the module docstring).
    `main=False` runs it as a module instead (`if __name__ == "__main__":` blocks skipped);
    `namespace=False` skips the network namespace and relies on the socket guard alone."""
    limits = limits or SandboxLimits()
    drop_to = _nobody() if os.geteuid() == 0 else None
    cfg: dict[str, object] = {
        "limits": _rlimits(limits),
        "namespace": namespace and sys.platform.startswith("linux"),
        "drop_to": drop_to,
        "processes": limits.processes,
        "main": main,
    }
    with tempfile.TemporaryDirectory(prefix="moa-sandbox-") as base:
        work = Path(base) / "work"
        work.mkdir()
        (work / "main.py").write_text(code, encoding="utf-8")
        if drop_to is not None:
            uid, gid = drop_to
            for path in (work, work / "main.py"):
                os.chown(path, uid, gid)
        out_path, err_path = Path(base) / "stdout", Path(base) / "stderr"
        report_r, report_w = os.pipe()
        cfg["report_fd"] = report_w
        start = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, json.dumps(cfg)],
                cwd=work,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=(report_w,),
                close_fds=True,
            )
            os.close(report_w)
            timed_out = False
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill(proc)  # also ends what the child left running in its group
        seconds = time.monotonic() - start
        with os.fdopen(report_r, "rb") as report:
            network = report.read().decode() or "unknown"
        stdout = _read(out_path, limits.output_chars)
        stderr = _read(err_path, limits.output_chars)
        shutil.rmtree(work, ignore_errors=True)
    status = _status(proc.returncode, stderr, timed_out)
    return Outcome(status, proc.returncode, stdout, stderr, round(seconds, 3), network)


async def arun_python(
    code: str, *, limits: SandboxLimits | None = None, main: bool = True
) -> Outcome:
    """`run_python` in a worker thread, so an event loop keeps serving while code runs."""
    return await asyncio.to_thread(run_python, code, limits=limits, main=main)
