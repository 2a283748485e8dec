"""Shared test set-up. The Kantata sandbox fixtures come from its pytest plugin."""

pytest_plugins = ["kantata_sandbox.pytest_plugin"]
