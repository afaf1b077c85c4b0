"""tests/gan: one intra-op thread. The networks here are tiny; on a busy 2-core machine OpenMP
threads that wait for each other make each small op ~100x slower, and one thread keeps the
float results independent of the machine's thread count."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
