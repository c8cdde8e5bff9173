"""`python -m skprocessing worker URL` (core/pool/worker_host.py): what retrying cannot fix
ends the worker host at once with exit code 2 and a message, instead of a retry loop."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _worker_host(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SKPROCESSING_KEY"}
    return subprocess.run([sys.executable, "-m", "skprocessing", "worker", *args, "--give-up", "60"],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(90)
def test_reaching_beyond_loopback_without_a_key_is_refused_at_once():
    # Refused before any socket is made: nothing is sent anywhere.
    result = _worker_host("tcp://0.0.0.0:5555")
    assert result.returncode == 2, result.stderr
    assert "without a key" in result.stderr and "giving up" not in result.stderr


@pytest.mark.timeout(90)
def test_an_address_without_a_port_is_refused_at_once():
    result = _worker_host("tcp://127.0.0.1")
    assert result.returncode == 2, result.stderr
    assert "names no address to connect to" in result.stderr


@pytest.mark.timeout(90)
def test_an_unknown_transport_option_is_refused_at_once():
    result = _worker_host("tcp://127.0.0.1:9?colour=blue")
    assert result.returncode == 2, result.stderr
    assert "colour" in result.stderr
