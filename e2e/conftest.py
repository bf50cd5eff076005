"""pytest's set-up of the e2e suite on the real node: the import path, the SIGTERM handling, the marker. The
fixtures are in stack_fixtures.py."""
import os
import signal
import sys

E2E = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, E2E)

pytest_plugins = ["stack_fixtures"]  # not "fixtures": pytest has a plugin of that name


def pytest_configure(config):
    # A SIGTERM (a CI time-out, `kill`) becomes an exit that still runs the fixtures' teardown (the
    # stacks are deleted; run.sh stops the node).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config.addinivalue_line("markers", "stack: applies a stack to the real node (root)")
