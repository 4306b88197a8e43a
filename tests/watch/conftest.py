import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The CPUs are shared: one intra-op thread is several times faster than oversubscribing them.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def need_kernels() -> None:
    """Skip a test of the compiled kernels where they are not built (no C compiler when
    babysit was installed: babysit then computes the same with NumPy and PyTorch), except
    with BABYSIT_REQUIRE_KERNELS=1 (CI), which makes that a failure."""
    from babysit.watch import histograms

    if histograms.summarize is not None:
        return
    message = "babysit.watch._kernels is not compiled: reinstall (pip install -e .) with a C compiler"
    if os.environ.get("BABYSIT_REQUIRE_KERNELS") == "1":
        pytest.fail(message + " (BABYSIT_REQUIRE_KERNELS=1)")
    pytest.skip(message)
