"""The layering ARCHITECTURE.md promises: the core reaches other processes only through
the transport interface, so no core module imports a backend or what backends are made of."""

from __future__ import annotations

import ast
from pathlib import Path

import skprocessing

CORE = Path(skprocessing.__file__).parent / "core"
FORBIDDEN = ("skprocessing.transports.local", "skprocessing.transports.zmq",
             "skprocessing.transports._", "multiprocessing", "zmq", "socket", "select")


def _imports(path: Path) -> list[str]:
    """Absolute names of every module `path` imports (anywhere, even inside functions)."""
    package = "skprocessing." + ".".join(path.relative_to(CORE.parent).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_no_core_module_imports_a_backend():
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 20  # the scan really covers the core
    offenders = {str(path.relative_to(CORE.parent)): name
                 for path in modules for name in _imports(path)
                 if any(name == bad or name.startswith(bad if bad.endswith("_") else bad + ".")
                        for bad in FORBIDDEN)}
    assert not offenders, f"core modules importing backends: {offenders}"


def test_the_scan_sees_relative_imports():
    names = _imports(CORE / "process.py")
    assert "skprocessing.transports.base" in names and "skprocessing.core.engine" in names
