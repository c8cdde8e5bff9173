"""What a user's own script sees when its work fails in a worker, as a script run with
`python script.py`: the traceback names the script's file and line (not
"<dynamic-code>"), a timeout or a death names the item by index and value, and an
exception that cannot travel back keeps its type, module and message as attributes.
Over the local transport and over ZeroMQ."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(180)

SCRIPT = textwrap.dedent('''
    import json, os, sys, time, traceback
    from skprocessing import Pool, RemoteError, Skprocess

    def parse(record):
        if record["id"] == 3:
            raise ValueError(f"bad record {record['id']}")  # LINE parse
        return record["id"]

    def stall(record):
        if record["id"] == 2:
            time.sleep(60)
        return record["id"]

    def crash(word):
        if word == "boom":
            os._exit(3)
        return word

    class Unrebuildable(Exception):
        def __init__(self, code, reason):  # pickles, but cannot be rebuilt from its args
            super().__init__(f"code {code}: {reason}")

    def refuse(x):
        raise Unrebuildable(x, "refused")  # LINE refuse

    class Job(Skprocess):
        def __run__(self):
            raise KeyError("in run")  # LINE run

    def text(call):
        try:
            call()
        except BaseException as exc:
            return exc, "".join(traceback.format_exception(exc))
        raise AssertionError("it did not fail")

    if __name__ == "__main__":
        transport = sys.argv[1]
        records = [{"id": i, "name": "x" * 200} for i in range(5)]
        out = {}
        with Pool(2, transport=transport) as pool:
            out["task"] = text(lambda: pool.map(parse, records))[1]
            out["timeout"] = str(text(lambda: pool.map(stall, records, timeout=2))[0])
            out["death"] = str(text(lambda: pool.map(crash, ["a", "boom", "c"]))[0])
            error, out["remote"] = text(lambda: pool.map(refuse, [7]))
            out["remote_attrs"] = [type(error).__name__, isinstance(error, RemoteError),
                                   error.type_name, error.module, error.error_message,
                                   error.remote_traceback]
        out["skprocess"] = text(lambda: Job().run())[1]
        print(json.dumps(out))
''')


def _line(marker: str) -> int:
    return next(n for n, line in enumerate(SCRIPT.splitlines(), 1) if f"# LINE {marker}" in line)


@pytest.mark.parametrize("transport", ["local://", "tcp://127.0.0.1"])
def test_a_scripts_failures_in_workers_name_its_file_line_and_items(tmp_path, transport):
    script = tmp_path / "my_script.py"
    script.write_text(SCRIPT)
    run = subprocess.run([sys.executable, str(script), transport], capture_output=True,
                         text=True, timeout=170, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])

    for key, marker, source in (("task", "parse", 'raise ValueError(f"bad record'),
                                ("remote", "refuse", 'raise Unrebuildable(x, "refused")'),
                                ("skprocess", "run", 'raise KeyError("in run")')):
        assert f'File "{script}", line {_line(marker)}, in ' in out[key], out[key]
        assert source in out[key]  # the worker read the line from the user's file
        assert "<dynamic-code>" not in out[key]

    # The index and a short, bounded repr of the value.
    assert out["timeout"].startswith("item 2 ({'id': 2, 'name': 'xxx"), out["timeout"]
    assert "...x" in out["timeout"] and len(out["timeout"]) < 300
    assert "ran over its 2 s timeout" in out["timeout"]
    # (over ZeroMQ, os._exit may drop the worker's STARTED: then "never started")
    assert out["death"].startswith("item 1 ('boom') of Pool.map "), out["death"]
    assert "exited with code 3" in out["death"]

    name, is_remote_error, type_name, module, message, remote_traceback = out["remote_attrs"]
    assert (name, is_remote_error) == ("RemoteError", True)
    assert (type_name, module, message) == ("Unrebuildable", "__main__", "code 7: refused")
    assert f"line {_line('refuse')}" in remote_traceback
    assert "__main__.Unrebuildable: code 7: refused" in out["remote"]


def test_help_exits_0_and_prints_usage_on_stdout():
    for flag in ("--help", "-h"):
        run = subprocess.run([sys.executable, "-m", "skprocessing", flag], capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("usage: python -m skprocessing COMMAND")
        assert "worker" in run.stdout and "demo" in run.stdout
    run = subprocess.run([sys.executable, "-m", "skprocessing", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("skprocessing ")
    run = subprocess.run([sys.executable, "-m", "skprocessing"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "usage" in run.stderr
