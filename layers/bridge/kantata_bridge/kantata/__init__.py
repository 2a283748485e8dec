"""Kantata OX API: typed models, typed errors and an HTTP client (see client.py)."""

from typing import Final

# Here rather than in client.py so that settings modules can name the default without importing requests.
DEFAULT_BASE_URL: Final = "https://api.mavenlink.com/api/v1"
