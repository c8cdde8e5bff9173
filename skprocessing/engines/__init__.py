"""Cluster engines (Ray, Dask) as the place where a Pool's workers run.

    Pool(transport="ray")                    # a running Ray cluster, else a local Ray
    Pool(transport="ray://head:10001")       # Ray Client
    Pool(transport="dask://scheduler:8786")  # a Dask scheduler
    Pool(transport=client)                   # a distributed.Client the caller has

The engine places the workers (a Ray actor or a long-running Dask task per worker slot);
our ZeroMQ transport, keyed with a fresh random key per pool, carries the work between
them and the caller. So the Pool, Share and `start(on=pool)` run unchanged on top, with
every guarantee they give elsewhere (see ARCHITECTURE.md "Cluster engines: Ray and Dask").
Each engine module imports its engine; nothing else in the package does.
"""
