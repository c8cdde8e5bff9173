"""cerial's pickler: cloudpickle's Pickler plus the reducer table, and the byte functions.

Plain data pays nothing extra: the C pickler writes ints, floats, strings, bytes, lists,
tuples, dicts and sets without calling `reducer_override` at all; for everything else the
override costs one cached dict lookup before doing what cloudpickle would have done.
Only after a failure does anything walk the object (to name the part that failed).
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any

import cloudpickle

from ...errors import DeserializationError
from .._errors import serialization_error
from ._table import CLOUDPICKLE, cache, resolve

__all__ = ["CerialPickler", "dumps", "loads", "serialize", "deserialize"]

PROTOCOL = 5
# Scalars pickle the same with any pickler: the C function is ~5x cheaper than building one.
# (Not str or bytes: pickle.dumps grows its buffer by reallocation, slow for big ones.)
# Types whose plain-pickle form is exactly what cerial would write: no pickler object needed.
_SCALARS = frozenset({int, float, bool, complex, type(None), str, bytes, bytearray})
_pickle_dumps = pickle.dumps
_pickle_loads = pickle.loads
_cloud_override = cloudpickle.Pickler.reducer_override
_cloud_code_reduce = cloudpickle.Pickler.dispatch_table[types.CodeType]
_PLACEHOLDER = "<dynamic-code>"


def _code_reduce(code: types.CodeType) -> tuple[Callable[..., types.CodeType], tuple]:
    """cloudpickle's code reducer, keeping the file name it replaces by "<dynamic-code>"
    (for byte-identical payloads wherever a function was defined): a function sent by
    value then shows its own file and line in a worker's traceback."""
    rebuild, args = _cloud_code_reduce(code)
    try:  # where the file name goes depends on the Python version: find the placeholder
        at = args.index(_PLACEHOLDER)
    except ValueError:
        return rebuild, args
    return rebuild, (*args[:at], code.co_filename, *args[at + 1:])


class CerialPickler(cloudpickle.Pickler):
    """cloudpickle's Pickler, consulting the live-resource reducer table first."""

    dispatch_table = ChainMap({types.CodeType: _code_reduce}, cloudpickle.Pickler.dispatch_table)

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        try:
            reducer = cache[cls]
        except KeyError:
            reducer = resolve(cls)
        if reducer is None:
            return NotImplemented
        if reducer is CLOUDPICKLE:
            return _cloud_override(self, obj)
        return reducer(obj)


class _VerbosePickler(CerialPickler):
    """Prints each object that a table reducer (not plain pickle) handles."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        reducer = cache.get(cls) or resolve(cls)
        if reducer is not None and reducer is not CLOUDPICKLE:
            print(f"cerial: {cls.__module__}.{cls.__qualname__} via "
                  f"{getattr(reducer, '__name__', reducer)}", file=sys.stderr)
        return super().reducer_override(obj)


def dumps(obj: Any, protocol: int = PROTOCOL,
          buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None) -> bytes:
    """Pickle `obj` with cerial's pickler; errors are pickle's own (see `serialize`)."""
    file = io.BytesIO()
    CerialPickler(file, protocol, buffer_callback=buffer_callback).dump(obj)
    return file.getvalue()


def _verbose_dumps(obj: Any) -> bytes:
    file = io.BytesIO()
    _VerbosePickler(file, PROTOCOL).dump(obj)
    return file.getvalue()


loads = pickle.loads  # the rebuild functions are importable: plain pickle can load cerial


def serialize(obj: Any, *, debug: bool = False, verbose: bool = False) -> bytes:
    """Turn `obj` into bytes, live resources included.

    Raises `SerializationError` naming the path to the part that failed
    (`Job -> state['conn'] -> _sock`) and its type. `verbose=True` prints what the live-
    resource reducers handle and, on failure, each step of the search for the culprit;
    `debug=True` adds the original error's traceback to the message.
    """
    if type(obj) in _SCALARS and not (debug or verbose):
        return _pickle_dumps(obj, 5)  # no Python-level pickler needed at all
    if debug or verbose:
        return _serialize_loudly(obj, debug, verbose)
    try:
        file = io.BytesIO()
        CerialPickler(file, PROTOCOL).dump(obj)
        return file.getvalue()
    except Exception as exc:
        raise serialization_error(obj, exc, dumps, "cerial") from exc


def _serialize_loudly(obj: Any, debug: bool, verbose: bool) -> bytes:
    try:
        return _verbose_dumps(obj) if verbose else dumps(obj)
    except Exception as exc:
        error = serialization_error(obj, exc, dumps, "cerial", verbose=verbose)
        if debug:
            import traceback
            error.args = (f"{error.args[0]}\n{''.join(traceback.format_exception(exc))}",)
        raise error from exc


def deserialize(data: bytes | bytearray | memoryview, *, debug: bool = False,
                verbose: bool = False) -> Any:
    """Rebuild an object from `serialize`'s bytes.

    Raises `DeserializationError` for truncated, tampered or otherwise unloadable data;
    it never lets a bad byte string take the process down with another exception.
    """
    try:
        return _pickle_loads(data)
    except (Exception, SystemExit) as exc:  # SystemExit: a tampered stream may name exit()
        message = f"cerial could not deserialize {len(data)} bytes: {type(exc).__name__}: {exc}"
        if verbose:
            print(f"cerial: {message}", file=sys.stderr)
        if debug:
            import traceback
            message += "\n" + "".join(traceback.format_exception(exc))
        raise DeserializationError(message) from exc

