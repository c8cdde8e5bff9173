"""Logging: every component logs under "skprocessing.<part>" (the names README lists), and
a program that configures no logging hears nothing from a normal run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import run_script

pytestmark = pytest.mark.timeout(120)

PACKAGE = Path(__file__).resolve().parent.parent / "skprocessing"
README = PACKAGE.parent / "README.md"

# getLogger calls whose name is not ours to choose: cerial rebuilds a *user's* logger
# (one that travelled inside an object) under the name it had.
NOT_OURS = {("serializers/cerial/_io.py", "name")}


def logger_names() -> dict[str, list[str]]:
    """{logger name (or the expression, when not a literal): [files]} for every
    `getLogger(...)` call in the package."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                    == "getLogger"):
                arg = node.args[0] if node.args else None
                name = arg.value if isinstance(arg, ast.Constant) else ast.unparse(arg) if arg else ""
                if (relative, name) not in NOT_OURS:
                    found.setdefault(name, []).append(relative)
    return found


def test_every_logger_is_under_skprocessing():
    names = logger_names()
    assert names, "the scan found no logger at all"
    wrong = {name: files for name, files in names.items() if not name.startswith("skprocessing.")}
    assert not wrong, f"loggers outside 'skprocessing.': {wrong}"


def test_readme_documents_every_logger_name():
    documented = set(re.findall(r"`(skprocessing\.[a-z_.]+)`", README.read_text()))
    missing = set(logger_names()) - documented
    assert not missing, f"README's logging section does not name: {sorted(missing)}"


def test_quiet_by_default():
    # A normal run, local and ZeroMQ, in a program that configures no logging: no output.
    result = run_script("""
        from skprocessing import Executor, Pool
        with Pool(2) as pool:
            assert pool.map(abs, range(-50, 0)) == list(range(50, 0, -1))
        with Pool(2, transport="tcp://127.0.0.1") as pool:
            assert pool.map(abs, range(-50, 0)) == list(range(50, 0, -1))
        with Executor(2) as ex:
            assert ex.submit(abs, -1).result(60) == 1
        print("OK")
    """, timeout=100)
    assert result.stdout.strip() == "OK", result.stderr
    assert result.stderr == ""


def test_an_application_that_configures_logging_hears_its_loggers():
    # A peer with another key: the head drops its handshake and says so, by its logger's name.
    result = run_script("""
        import logging, secrets
        logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
        from skprocessing import Pool, TransportError, get_transport
        with Pool(1, transport="tcp://127.0.0.1", key=secrets.token_hex(32)) as pool:
            outsider = get_transport(pool.address).with_key(secrets.token_hex(32))
            try:
                outsider.connect(pool.address, timeout=2)
            except TransportError:
                print("REFUSED")
            outsider.close()
    """, timeout=100)
    assert result.stdout.strip() == "REFUSED", result.stderr
    assert re.search(r"^skprocessing\.transports\.zmq WARNING dropped a message from 127\.0\.0\.1 .*"
                     r"bad signature", result.stderr, re.M), result.stderr
