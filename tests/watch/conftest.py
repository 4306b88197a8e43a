import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The CPUs are shared: one intra-op thread is several times faster than oversubscribing them.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
