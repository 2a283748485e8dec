"""Shared test set-up. The Kantata sandbox and tracker fakes fixtures come from their pytest plugins."""

from hypothesis import settings

pytest_plugins = ["kantata_sandbox.pytest_plugin", "tracker_fakes.pytest_plugin"]

# Property tests judge behaviour, never speed: no per-example deadline, so a loaded CI machine cannot turn a
# slow example into a failure. A failure prints the blob that reproduces it.
settings.register_profile("bridge", deadline=None, print_blob=True)
settings.load_profile("bridge")
