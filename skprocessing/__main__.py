"""`python -m skprocessing COMMAND`: `demo` runs the tour; `worker` joins a ZeroMQ pool;
`status` asks a running head what it is doing."""

from __future__ import annotations

import importlib
import sys

# Each command lives in its own module, imported only when asked for.
COMMANDS = {
    "demo": ("skprocessing._demo", "main", "run the demo of Skprocess, Pool, Share and ZeroMQ"),
    "worker": ("skprocessing.core.pool.worker_host", "main", "join a ZeroMQ pool as a worker host"),
    "status": ("skprocessing._status", "main", "show a running head's workers, progress and losses"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m skprocessing COMMAND [options]\n\ncommands:", file=sys.stderr)
        for name, (_, _, about) in COMMANDS.items():
            print(f"  {name:8} {about}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[argv[0]]
    return getattr(importlib.import_module(module), function)(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
