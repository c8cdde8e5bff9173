"""The layering ARCHITECTURE.md promises, as import-linter contracts (pyproject.toml,
`[tool.importlinter]`), checked both ways: the tree keeps every contract, and a copy of
the package with one forbidden import planted in it breaks the contract that forbids it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import skprocessing

PACKAGE = Path(skprocessing.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"
CONTRACTS = {c["id"]: c for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]}
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"

# (contract, module, import planted at its end). An import inside a function counts too:
# a lazy import is still a dependency.
PLANTS = [
    ("core-uses-the-interface", "core/pool/_worker.py", "from ...transports.zmq import channel"),
    ("core-uses-the-interface", "core/engine.py", "def _planted():\n    from ..transports import local"),
    ("core-uses-the-interface", "core/share/share.py", "import socket"),
    ("core-uses-the-interface", "core/remote.py", "from ..transports.memory import MemoryTransport"),
    ("backends-independent", "transports/zmq/transport.py", "from ..local import LocalTransport"),
    ("backends-independent", "transports/local.py", "def _planted():\n    from .zmq import ZmqTransport"),
    ("backends-independent", "transports/memory.py", "from .local import LocalChannel"),
    ("transports-below-the-core", "transports/memory.py", "def _planted():\n    from ..core import _exit"),
    ("transports-below-the-core", "transports/_launcher.py", "from ..core import engine"),
    ("transports-below-the-core", "transports/zmq/inbox.py", "from ...serializers import codec"),
    ("serializers-below-the-core", "serializers/codec.py", "from ..transports import base"),
    ("serializers-below-the-core", "serializers/pickle.py", "def _planted():\n    from ..core import pipe"),
    ("transports-acyclic", "transports/zmq/protocol.py", "def _planted():\n    from . import transport"),
    ("transports-acyclic", "transports/_wait.py", "from . import _sockets"),
    ("engines-only-in-engines", "core/pool/pool.py", "def _planted():\n    import ray"),
    ("engines-only-in-engines", "transports/__init__.py", "def _planted():\n    from ..engines import dask"),
]


def _lint(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under `root` (with this project's contracts)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-c", LINT, "--config", str(PYPROJECT), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _broken(result: subprocess.CompletedProcess) -> set[str]:
    text = " ".join(result.stdout.split())  # (the report wraps long names)
    return {key for key, c in CONTRACTS.items() if f"{' '.join(c['name'].split())} BROKEN" in text}


def test_the_tree_keeps_every_contract():
    result = _lint(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize("contract, module, plant", PLANTS,
                         ids=[f"{c}:{m}" for c, m, _ in PLANTS])
def test_a_planted_import_breaks_its_contract(tmp_path, contract, module, plant):
    shutil.copytree(PACKAGE, tmp_path / "skprocessing",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "skprocessing" / module
    target.write_text(target.read_text() + f"\n\n{plant}  # planted by tests/test_layers.py\n")
    result = _lint(tmp_path)
    assert result.returncode != 0, f"{contract} still kept with {plant!r} in {module}"
    assert _broken(result) == {contract}, result.stdout


def test_every_contract_has_a_plant():
    assert {contract for contract, _, _ in PLANTS} == set(CONTRACTS)


def test_the_contracts_name_every_backend_module():
    """A new transport module is covered without anyone remembering to list it: every
    module of the transport layer but the interface is forbidden to the core, and every
    backend (a public module or package) is one of the independent ones."""
    transports = PACKAGE / "transports"
    modules = {f"skprocessing.transports.{p.stem}" for p in transports.iterdir()
               if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.stem not in ("__init__", "base")}
    backends = {name for name in modules if not name.rpartition(".")[2].startswith("_")}
    assert modules <= set(CONTRACTS["core-uses-the-interface"]["forbidden_modules"])
    assert backends == set(CONTRACTS["backends-independent"]["modules"])
