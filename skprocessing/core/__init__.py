"""The core: lifecycle engine, Skprocess, Pool scheduler, Share coordinator, Pipe.

Core modules reach other processes only through `skprocessing.transports.base`; they
never import multiprocessing, zmq or a transport backend (see ARCHITECTURE.md, Layers).
"""
