"""Suite-wide pytest settings."""

import signal

import pytest


def pytest_configure(config):
    """CI may start the suite in the background with SIGINT ignored (``cmd &`` in a script); the
    Ctrl-C tests, and the subprocesses they start, need it delivered."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (small tensors: no OpenMP spin-waits on busy shared cores; results
    independent of the machine's cores), then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
