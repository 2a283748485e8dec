"""Shared test set-up. The Kantata sandbox fixture comes from its pytest plugin."""

import importlib.util

# TODO(lead): make unconditional once the sandbox lands.
pytest_plugins = (
    ["kantata_sandbox.pytest_plugin"] if importlib.util.find_spec("kantata_sandbox.pytest_plugin") else []
)
