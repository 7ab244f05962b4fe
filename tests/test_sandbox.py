"""The sandbox on real code in real child processes: results, timeouts, memory, network, files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from moa.sandbox import SandboxLimits, arun_python, isolation, run_python


def test_a_script_runs_and_its_output_comes_back() -> None:
    outcome = run_python("import math\nprint(math.factorial(5))")
    assert (outcome.status, outcome.stdout, outcome.returncode) == ("ok", "120\n", 0)


def test_an_exception_is_an_error_with_its_traceback() -> None:
    outcome = run_python("def f():\n    return 1 / 0\nf()")
    assert outcome.status == "error" and "ZeroDivisionError" in outcome.stderr


def test_an_infinite_loop_is_killed_at_the_timeout() -> None:
    outcome = run_python("while True:\n    pass", limits=SandboxLimits(timeout_s=1.0, cpu_s=30))
    assert outcome.status == "timeout"
    assert 0.9 <= outcome.seconds < 5


def test_cpu_time_is_bounded_too() -> None:
    outcome = run_python("while True:\n    pass", limits=SandboxLimits(timeout_s=20.0, cpu_s=1))
    assert outcome.status == "timeout" and outcome.seconds < 10


def test_a_memory_hog_hits_the_limit() -> None:
    outcome = run_python(
        "x = bytearray(2 * 1024**3)\nprint('allocated')", limits=SandboxLimits(memory_mb=256)
    )
    assert outcome.status == "memory" and "allocated" not in outcome.stdout


@pytest.mark.parametrize("namespace", [True, False], ids=["namespace", "guard only"])
def test_a_network_attempt_fails_and_reaches_nothing(namespace: bool) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.2)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
        outcome = run_python(code, namespace=namespace)
        assert outcome.status == "error" and "connected" not in outcome.stdout
        assert "OSError" in outcome.stderr or "unreachable" in outcome.stderr.lower()
        with pytest.raises(TimeoutError):
            server.accept()  # nothing ever arrived
    assert outcome.network == (isolation()["network"] if namespace else "guard")


def test_a_relative_write_lands_in_the_temporary_directory_which_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = "import os\nopen('out.txt', 'w').write('x')\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))"
    outcome = run_python(code)
    assert outcome.ok, outcome.stderr
    where, listing = outcome.stdout.splitlines()
    assert listing == "['main.py', 'out.txt']"  # it started empty but for the script
    assert Path(where) != tmp_path and not Path(where).exists()  # removed afterwards
    assert not (tmp_path / "out.txt").exists()


def test_as_root_the_code_cannot_write_outside_its_directory(tmp_path: Path) -> None:
    if isolation()["user"] != "nobody":
        pytest.skip("not root: the child keeps the caller's file permissions")
    target = tmp_path / "escaped.txt"
    outcome = run_python(f"open({str(target)!r}, 'w').write('x')")
    assert outcome.status == "error" and "PermissionError" in outcome.stderr
    assert not target.exists()


def test_the_environment_is_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_TEST_SECRET", "sk-do-not-leak")
    outcome = run_python("import os\nprint(sorted(os.environ))")
    assert outcome.ok and "MOA_TEST_SECRET" not in outcome.stdout
    assert os.environ["MOA_TEST_SECRET"] == "sk-do-not-leak"


def test_output_is_bounded() -> None:
    outcome = run_python("print('y' * 5_000_000)", limits=SandboxLimits(output_chars=1000))
    assert outcome.ok and len(outcome.stdout) == 1000


def test_main_blocks_run_only_as_a_script() -> None:
    code = "if __name__ == '__main__':\n    print('main')\nprint('loaded')"
    assert run_python(code).stdout == "main\nloaded\n"
    assert run_python(code, main=False).stdout == "loaded\n"


async def test_the_async_form_runs_in_a_thread() -> None:
    outcome = await arun_python("print(6 * 7)")
    assert outcome.stdout == "42\n"
