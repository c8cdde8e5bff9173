"""Test helpers shipped with skprocessing, for authors of backends (transports).

`skprocessing.testing.conformance` is the transport conformance suite: the behaviour the
core relies on from every backend, as pytest tests over a `transport` fixture you define
(see that module). It needs pytest; nothing else in skprocessing imports this package.
"""
