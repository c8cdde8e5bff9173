"""`python -m skprocessing COMMAND`: `demo` runs the tour; `worker` joins a ZeroMQ pool;
`status` asks a running head what it is doing."""

from __future__ import annotations

import importlib
import sys
from typing import TextIO

# Each command lives in its own module, imported only when asked for.
COMMANDS = {
    "demo": ("skprocessing._demo", "main", "run the demo of Skprocess, Pool, Share and ZeroMQ"),
    "worker": ("skprocessing.core.pool.worker_host", "main", "join a ZeroMQ pool as a worker host"),
    "status": ("skprocessing._status", "main", "show a running head's workers, progress and losses"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        _usage(sys.stdout)  # asked for: the answer, on stdout, and success
        return 0
    if argv and argv[0] == "--version":
        from . import __version__
        print(f"skprocessing {__version__}")
        return 0
    if not argv or argv[0] not in COMMANDS:
        if argv:
            print(f"skprocessing: unknown command {argv[0]!r}", file=sys.stderr)
        _usage(sys.stderr)
        return 2
    module, function, _ = COMMANDS[argv[0]]
    return getattr(importlib.import_module(module), function)(argv[1:]) or 0


def _usage(stream: TextIO) -> None:
    print("usage: python -m skprocessing COMMAND [options]\n\ncommands:", file=stream)
    for name, (_, _, about) in COMMANDS.items():
        print(f"  {name:8} {about}", file=stream)
    print("\n`python -m skprocessing COMMAND --help` tells a command's options.", file=stream)


if __name__ == "__main__":
    sys.exit(main())
