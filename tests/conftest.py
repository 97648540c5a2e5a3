"""Suite-wide pytest settings."""

import signal


def pytest_configure(config):
    """CI may start the suite in the background with SIGINT ignored (``cmd &`` in a script); the
    Ctrl-C tests, and the subprocesses they start, need it delivered."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
