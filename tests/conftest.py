"""Shared fixtures: seeded random generators (the same numbers on every run of a test)."""
import zlib

import numpy as np
import pytest
import torch


def _seed(request) -> int:
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture
def gen(request) -> torch.Generator:
    """A CPU torch.Generator seeded from the test's id."""
    return torch.Generator().manual_seed(_seed(request))


@pytest.fixture
def np_rng(request) -> np.random.Generator:
    """A NumPy Generator seeded from the test's id."""
    return np.random.default_rng(_seed(request))
