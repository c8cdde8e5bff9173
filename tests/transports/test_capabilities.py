"""The core chooses behaviour by a transport's declared capabilities, never by its name:
the local transport under another name gets exactly the same treatment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skprocessing
from skprocessing import Pool, Share, Skprocess
from skprocessing.core.share._connection import Direct, Syncing
from skprocessing.transports import get_transport
from skprocessing.transports.base import Capability

from ._entries import NoSharedMemoryLocal, RenamedLocal

CORE = Path(skprocessing.__file__).parent / "core"


def _square(x):
    return x * x


def _count(share, n):
    for _ in range(n):
        share.hits += 1
    return n


def _behaviour(transport) -> dict:
    """What the core decided for `transport`, read from the objects it built."""
    seen = {}
    with pytest.raises(ValueError, match="workers=0"):
        Pool(0, transport=transport)
    with Pool(2, transport=transport) as pool:
        seen["credits"] = pool._scheduler.credits
        seen["watch_handles"] = pool._scheduler._watch_handles
        seen["beside"] = pool._neighbour_address()
        seen["map"] = pool.map(_square, range(50))
        share = Share(transport=transport)
        share.hits = 0
        seen["counted"] = sum(pool.star().map(_count, [(share, 250)] * 4))
        seen["hits"] = share.hits
        seen["connection"] = type(share._sk_client._channel).__name__
        share.stop()
    return seen


@pytest.mark.timeout(120)
def test_a_renamed_local_transport_gets_the_same_core_behaviour():
    local, renamed = get_transport("local://"), RenamedLocal()
    assert renamed.name != local.name and renamed.capabilities == local.capabilities
    assert _behaviour(renamed) == _behaviour(local) == {
        "credits": 2, "watch_handles": False, "beside": None, "map": [x * x for x in range(50)],
        "counted": 1000, "hits": 1000, "connection": Direct.__name__}


def test_the_backends_declare_what_the_core_reads():
    assert get_transport("local://").capabilities == {Capability.IMMEDIATE_DELIVERY,
                                                      Capability.DEATH_CLOSES_CHANNELS,
                                                      Capability.SAME_HOST_MEMORY,
                                                      Capability.SELECTABLE_FDS}
    zmq = get_transport("tcp://127.0.0.1:0")
    assert zmq.capabilities == {Capability.CROSS_HOST, Capability.SAME_HOST_MEMORY,
                                Capability.SELECTABLE_FDS}
    assert zmq.address_beside("tcp://127.0.0.1:5555") == "tcp://127.0.0.1:*"
    assert zmq.address_beside("ipc:///tmp/x") == "ipc://"
    assert Syncing is not Direct  # the two connection kinds a Share chooses between


def _names_compared_or_addresses_built(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Attribute) and side.attr == "name" for side in sides):
                found.append(f"line {node.lineno}: compares a .name")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in ("tcp", "ipc") or node.value.startswith(("tcp:", "ipc:")) and len(node.value) < 12:
                found.append(f"line {node.lineno}: builds or parses {node.value!r}")
    return found


def test_no_core_module_picks_behaviour_by_name_or_address_scheme():
    offenders = {str(path.relative_to(CORE)): found for path in sorted(CORE.rglob("*.py"))
                 if (found := _names_compared_or_addresses_built(path))}
    assert not offenders, offenders


def test_the_scan_sees_a_planted_name_check(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('if transport.name == "local":\n    x = f"tcp://{host}:*"\n'
                       'y = "tcp://"\n')
    assert len(_names_compared_or_addresses_built(planted)) == 3


_PROCESS_WIDE = ("atexit", "register_at_fork", "send_held", "holding", "exit_hook")


def _process_wide_hooks(source: str) -> list[str]:
    """Names in a module that belong to process-wide state the core owns (exit hooks,
    held-message batching), and module-level functions (the interface is classes)."""
    tree = ast.parse(source)
    found = [node.id if isinstance(node, ast.Name) else node.attr for node in ast.walk(tree)
             if isinstance(node, (ast.Name, ast.Attribute))
             and any(word in (node.id if isinstance(node, ast.Name) else node.attr)
                     for word in _PROCESS_WIDE)]
    found += [f"def {node.name}" for node in tree.body if isinstance(node, ast.FunctionDef)]
    found += [alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
              for alias in node.names if alias.name in ("atexit", "threading")]
    return found


def test_the_interface_keeps_no_process_wide_hooks():
    # Exit hooks and held-write batching are the core's (core/_exit.py, core/_held.py):
    # a backend author implements classes, and owes no calls into the layers above.
    base = Path(skprocessing.__file__).parent / "transports" / "base.py"
    assert _process_wide_hooks(base.read_text()) == []


def test_the_hook_scan_sees_a_planted_hook():
    planted = "import atexit\n\ndef send_held():\n    pass\n\natexit.register(send_held)\n"
    assert _process_wide_hooks(planted)


class _Ticker(Skprocess):
    """Runs until stopped, echoing what it is told; its result is how many runs it made."""

    def __init__(self):
        self.process_config.runs = None

    def __run__(self):
        told = self.listen(0.01)
        if told is not None:
            self.tell(("echo", told))

    def __result__(self):
        return self.current_run


@pytest.mark.timeout(60)
def test_without_shared_memory_stop_and_current_run_travel_as_messages(assert_reaped):
    import time
    process = _Ticker()
    process.start(transport=NoSharedMemoryLocal())  # its shared_int() fails the test if used
    assert_reaped(process._sk.handle.pid)
    deadline = time.monotonic() + 30
    while process.current_run < 3:  # RUN reports from the child's relay
        assert time.monotonic() < deadline, "current_run never advanced"
        time.sleep(0.01)
    process.tell("ping")
    assert process.listen(20) == ("echo", "ping")
    process.stop()  # a STOP message on the control channel
    runs = process.result()
    assert runs >= 3 and process.current_run == runs
    assert process._sk.handle.wait(20) == 0


_PROBED = {"buffered", "ready", "_inbox", "url", "_export_fd", "_import_fd"}


def _probes(source: str) -> list[str]:
    """getattr/hasattr calls that look for one of the interface's members by name."""
    return [node.args[1].value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and node.args[1].value in _PROBED]


def test_no_member_of_the_interface_is_probed_by_name():
    # `ready()`, `url`, `PassedByFd` are declared: nobody needs to ask whether they exist.
    # (Outside the transports, `ready` is another object's: a pool's results.)
    package = Path(skprocessing.__file__).parent
    found = {str(path.relative_to(package)): [name for name in _probes(path.read_text())
                                              if name != "ready" or "transports" in path.parts]
             for path in package.rglob("*.py")}
    assert {path: names for path, names in found.items() if names} == {}


def test_the_probe_scan_sees_a_planted_probe():
    assert _probes("ready = getattr(channel, 'buffered', None)") == ["buffered"]


@pytest.mark.timeout(300)
def test_a_third_party_backend_runs_the_shipped_conformance_suite(tmp_path):
    # As a backend's own test suite would: its fixture, the suite imported whole.
    import subprocess
    import sys
    (tmp_path / "test_mine.py").write_text(
        "import pytest\n"
        "from skprocessing.testing.conformance import *  # noqa\n"
        "from skprocessing.transports.local import LocalTransport\n\n"
        "class Mine(LocalTransport):\n"
        "    name = 'mine'\n\n"
        "@pytest.fixture\n"
        "def transport():\n"
        "    t = Mine()\n"
        "    yield t\n"
        "    t.close()\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:randomly", "test_mine.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "\n22 passed" in run.stdout, run.stdout[-1000:]  # every test of the suite ran
