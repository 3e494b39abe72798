"""Test helpers shared across test modules."""

from __future__ import annotations

import os

import numpy as np

# the environment variable holding the run's draw of where its DDS domains start
# (tests/conftest.py sets it once per run; every xdist worker inherits the same)
DOMAIN_DRAW = "GIGABRAIN_TEST_DOMAIN_DRAW"


def xdist_worker() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) in a run without workers. (A worker
    that replaces a crashed one is named past the count: it takes an index modulo the count.)"""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    return (int(name[2:]) % count if name.startswith("gw") else 0), count


def dds_domain(k: int) -> int:
    """The ``k``-th DDS domain of this test process, in 1..100. Worker i of n owns the domains
    i + 1, i + 1 + n, ...: tests running in parallel workers never share a domain."""
    index, count = xdist_worker()
    slots = 100 // count
    return 1 + index + count * ((int(os.environ.get(DOMAIN_DRAW, "0")) + 7 * k) % slots)


def make_observation(embodiment: str = "piper", seed: int = 0, size: int = 224, **overrides):
    from gigabrain_runtime.inference.types import Observation
    from gigabrain_runtime.robots.embodiment import get_embodiment

    emb = get_embodiment(embodiment)
    rng = np.random.default_rng(seed)
    fields = {
        "images": {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in emb.cameras},
        "state": (emb.lower + emb.upper) / 2,
        "instruction": "pick up the red cube",
        "embodiment": embodiment,
    }
    fields.update(overrides)
    return Observation(**fields)
