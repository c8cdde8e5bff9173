"""The core never imports a cluster engine: importing skprocessing and running a local
Pool (and a ZeroMQ one) leaves ray, distributed and dask out of sys.modules."""

from __future__ import annotations

from tests.conftest import run_script


def test_a_local_and_a_zmq_pool_import_no_engine():
    done = run_script("""
        import sys
        import skprocessing
        from skprocessing import Pool, Share
        with Pool(2) as pool:
            assert pool.map(abs, [-1, -2]) == [1, 2]
        with Pool(2, transport="tcp://127.0.0.1:0") as pool:
            assert pool.map(abs, [-3]) == [3]
        share = Share(); share.n = 1; share.stop()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "distributed", "dask")
                        or m.startswith("skprocessing.engines"))
        print("LOADED", loaded)
    """, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED []" in done.stdout, done.stdout
