"""The README's "Across hosts" recipe, run as a user copies it: the key made with its
command, its head script, and its worker command, in two processes.

The head binds `tcp://0.0.0.0:5555` exactly as written, inside a network namespace this
test makes (so nothing beyond it can reach that port, and parallel runs do not collide);
the worker joins at 127.0.0.1 instead of head.example. Without namespaces (not root) the
head binds 127.0.0.1 on a free port instead; everything else is unchanged.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.netns import netns_unavailable, star

pytestmark = pytest.mark.timeout(240)

README = Path(__file__).resolve().parents[2] / "README.md"


def recipe() -> tuple[list[str], str, list[str]]:
    """(the key commands, the head's script, the worker commands) of the README."""
    text = README.read_text()
    section = text[text.index("## Across hosts"):text.index("### A Share across hosts")]
    step1, step2, step3 = (section[section.index(f"**{n}. "):] for n in (1, 2, 3))
    key_commands = _indented(step1)
    head = step2[step2.index("```python\n") + 10:]
    head = head[:head.index("```")]
    return key_commands, head, _indented(step3)


def _indented(text: str) -> list[str]:
    """The first block of four-space-indented lines (a command block): its commands,
    alternatives given as `# or: COMMAND` included, other comments dropped."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        line = line.strip().removeprefix("# or: ")
        if not line.startswith("#"):
            block.append(line)
    return block


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lines(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return lines


def _env() -> dict[str, str]:
    # `python` in the README's commands is this interpreter; the worktree's package first.
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SKPROCESSING_KEY", None)
    return env


def _run_recipe(tmp_path: Path, prefix: list[str], head_bind: str | None, worker_command: str):
    key_commands, head_script, _ = recipe()
    env = _env()
    for command in key_commands:
        subprocess.run(command, shell=True, cwd=tmp_path, env=env, check=True, timeout=60)
    assert (tmp_path / "skprocessing.key").read_text().endswith("\n")  # what broke it before
    if head_bind is not None:
        head_script = head_script.replace("tcp://0.0.0.0:5555", head_bind)
    (tmp_path / "head.py").write_text(head_script)
    head = subprocess.Popen([*prefix, sys.executable, "head.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    worker = subprocess.Popen([*prefix, "sh", "-c", worker_command], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    worker_log = _lines(worker.stderr)
    try:
        out, err = head.communicate(timeout=150)
    finally:
        for process in (head, worker):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the agent stops its workers
        worker.wait(30)
        head.wait(30)
    seen = []
    while (line := worker_log.get(timeout=10)) is not None:
        seen.append(line)
    assert head.returncode == 0, f"head failed:\n{err}\nworker:\n{''.join(seen)}"
    status = eval(out.strip().splitlines()[-1], {})  # the head prints pool.status()
    # (the map may end before every worker of the host has joined)
    assert status["done"] == 100_000 and status["workers"] >= 1, out
    assert "bad signature" not in err, err
    return seen


@pytest.fixture
def namespace():
    reason = netns_unavailable()
    if reason is not None:
        yield None
        return
    with star("skr", "head", [], 60) as hosts:
        yield hosts["head"]


@pytest.mark.parametrize("variant", [0, 1], ids=["key-file", "SKPROCESSING_KEY"])
def test_the_readme_recipe_as_written(tmp_path, namespace, variant):
    _, _, worker_commands = recipe()
    assert len(worker_commands) == 2, worker_commands
    if namespace is None:
        port = _free_port()
        head_bind, prefix = f"tcp://127.0.0.1:{port}", []
    else:
        port, head_bind, prefix = 5555, None, ["ip", "netns", "exec", namespace]
    command = worker_commands[variant].replace("head.example:5555", f"127.0.0.1:{port}")
    log = _run_recipe(tmp_path, prefix, head_bind, command)
    assert any("joined the head" in line for line in log), log


def test_a_worker_with_another_key_is_reported_by_the_head_at_once(tmp_path):
    port = _free_port()
    head = subprocess.Popen(
        [sys.executable, "-c", "from skprocessing import Pool\n"
         f"with Pool(0, transport='tcp://127.0.0.1:{port}', key='{secrets.token_hex(32)}') as pool:\n"
         "    pool.map(abs, [1])\n"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    env = {**_env(), "SKPROCESSING_KEY": secrets.token_hex(32)}
    worker = subprocess.Popen([sys.executable, "-m", "skprocessing", "worker",
                               f"tcp://127.0.0.1:{port}", "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = _lines(head.stderr)
    try:
        seen = []
        while True:  # the first handshake the worker sends is reported, not a later retry
            line = lines.get(timeout=60)
            assert line is not None, seen
            seen.append(line)
            if "different key" in line:
                break
        assert re.search(r"from 127\.0\.0\.1 .* trying to connect with a different key", line), line
        assert "give every side the same key" in line
    finally:
        for process in (worker, head):
            process.terminate()
            process.wait(30)
