"""Shared test set-up. The Kantata sandbox fixture comes from its pytest plugin."""

pytest_plugins = ["kantata_sandbox.pytest_plugin"]
