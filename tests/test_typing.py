"""The package is typed for editors and type checkers (PEP 561): a built wheel ships
`py.typed` and the Pool's stub, and the stub says exactly what pool.py does: every
public name, and every parameter of every call (with its kind and default)."""

from __future__ import annotations

import ast
import glob
import inspect
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import skprocessing
from skprocessing import Pool
from skprocessing.core.modifiers import AsyncResults, Modifiable
from skprocessing.core.pool._results import ResultIterator

ROOT = Path(skprocessing.__file__).resolve().parent.parent
STUB = ROOT / "skprocessing" / "core" / "pool" / "pool.pyi"
MAPS = {"map": "_Map", "unordered_map": "_Map", "imap": "_IMap", "unordered_imap": "_IMap"}
STAR_MAPS = {"map": "_StarMap", "unordered_map": "_StarMap", "imap": "_StarIMap",
             "unordered_imap": "_StarIMap"}


@pytest.mark.timeout(300)
def test_a_built_wheel_ships_py_typed_and_the_stubs(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "skprocessing", source / "skprocessing",
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                            "-q", "-w", str(tmp_path / "out")],
                           capture_output=True, text=True, timeout=280)
    assert built.returncode == 0, built.stderr
    wheel, = glob.glob(str(tmp_path / "out" / "skprocessing-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    stubs = {str(p.relative_to(ROOT)) for p in (ROOT / "skprocessing").rglob("*.pyi")}
    assert "skprocessing/py.typed" in names
    assert stubs and stubs <= names, stubs - names


def _stub_classes() -> dict[str, ast.ClassDef]:
    tree = ast.parse(STUB.read_text(), str(STUB))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _members(cls: ast.ClassDef) -> dict[str, list[ast.AST]]:
    """name -> its definitions (several for an overloaded method)."""
    members: dict[str, list[ast.AST]] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            members.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members.setdefault(node.target.id, []).append(node)
    return members


def _stub_parameters(function: ast.FunctionDef) -> list[tuple[str, str, object]]:
    """(name, kind, default) of each parameter but self; default: its literal, or
    inspect.Parameter.empty."""
    args = function.args
    empty = inspect.Parameter.empty
    positional = args.posonlyargs + args.args
    defaults = [empty] * (len(positional) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults]
    out = [(a.arg, "POSITIONAL_OR_KEYWORD" if a in args.args else "POSITIONAL_ONLY", d)
           for a, d in zip(positional, defaults)]
    if args.vararg:
        out.append((args.vararg.arg, "VAR_POSITIONAL", empty))
    out += [(a.arg, "KEYWORD_ONLY", empty if d is None else ast.literal_eval(d))
            for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        out.append((args.kwarg.arg, "VAR_KEYWORD", empty))
    return [p for p in out if p[0] != "self"]


def _runtime_parameters(signature: inspect.Signature) -> list[tuple[str, str, object]]:
    return [(p.name, p.kind.name, p.default) for p in signature.parameters.values()
            if p.name != "self"]


def test_the_stub_has_every_public_name_of_pool_and_its_signature():
    classes = _stub_classes()
    stub = _members(classes["Pool"])
    runtime = {name for name in dir(Pool) if not name.startswith("_")}
    runtime |= {"__init__", "__enter__", "__exit__"}
    with Pool(1) as pool:  # and the public attributes an instance sets
        runtime |= {name for name in vars(pool) if not name.startswith("_")}
    public_stub = {name for name in stub if not name.startswith("_") or name.startswith("__")}
    assert public_stub == runtime
    for name in runtime - set(MAPS) - {"workers"}:
        attribute = inspect.getattr_static(Pool, name)
        if isinstance(attribute, property):
            assert any(isinstance(d, ast.FunctionDef) and d.decorator_list
                       and ast.unparse(d.decorator_list[0]) == "property" for d in stub[name]), name
            continue
        definition, = stub[name]
        assert _stub_parameters(definition) == _runtime_parameters(inspect.signature(attribute)), name
    assert {n for n, d in stub.items() if isinstance(d[0], ast.AnnAssign)} >= set(MAPS)


@pytest.mark.parametrize("star", [False, True], ids=["pool", "star"])
def test_every_map_call_in_the_stub_takes_the_parameters_the_method_takes(star):
    classes = _stub_classes()
    with Pool(1) as pool:
        maps = pool.star() if star else pool
        holder = _members(classes["_StarMaps" if star else "Pool"])
        for name, kind in (STAR_MAPS if star else MAPS).items():
            annotation, = holder[name]
            assert ast.unparse(annotation.annotation) == kind
            method = getattr(maps, name)
            runtime = _runtime_parameters(inspect.signature(method))
            assert not any(p[0].startswith("_modifier") for p in runtime)
            # The call itself and each mode's (the Protocols its modifiers return).
            modes = [kind] + [ast.unparse(d.returns) for d in
                              _members(classes[kind])["background"] + _members(classes[kind])["asynced"]]
            for protocol in modes:
                for call in _members(classes[protocol])["__call__"]:
                    assert _stub_parameters(call) == runtime, (name, protocol)
                modifiers = _members(classes[protocol])
                assert set(modifiers) == {"__call__", "timeout", "background", "asynced"}
                assert ast.unparse(modifiers["timeout"][0].returns) == protocol
            # The modifiers at run time are those the stub names.
            assert all(callable(getattr(method, m)) for m in ("timeout", "background", "asynced"))


def test_the_runtime_classes_the_types_name_are_generic():
    # The stub writes ResultIterator[R] and AsyncResults[R]; inline hints Modifiable[P, T].
    assert ResultIterator[int] is not None and AsyncResults[int] is not None
    assert Modifiable[[int], str] is not None
