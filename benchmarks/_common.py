"""Shared benchmark helpers: medians over repeats, ratio lines, optional libraries."""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable


def median_seconds(call: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def interleaved(ours: Callable[[], float], theirs: Callable[[], float], rounds: int) -> tuple[float, float]:
    """Medians of `rounds` alternating measurements of each side.

    These machines are shared and noisy: alternating puts both sides under the same load,
    and the median drops the rounds that a burst of someone else's work spoiled.
    """
    our_samples, their_samples = [], []
    for _ in range(rounds):
        their_samples.append(theirs())
        our_samples.append(ours())
    return statistics.median(our_samples), statistics.median(their_samples)


def optional(module: str):
    """The module, or None when it is not installed (its comparison is then skipped)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def report(title: str, ours: float, theirs: float, unit: str, target: str) -> float:
    """Print one comparison as ours/theirs: for a rate higher is better, for a time lower."""
    ratio = ours / theirs
    print(f"{title:58} ours {ours:12.4g} {unit:8} theirs {theirs:12.4g}  ratio {ratio:5.2f}x  (target {target})")
    return ratio
