import pytest
import torch

import babysit


@pytest.fixture(scope="session")
def digits():
    """(x, y) of the digits training split: real data, 1438 examples of 8x8 images (no test
    split held out: the checks were calibrated on these examples, and read no test split)."""
    split = babysit.load_data("digits", test_fraction=0)
    return split.x_train, split.y_train


@pytest.fixture(autouse=True)
def _few_threads():
    # The test machine is shared: small models run as fast on one thread, without contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
