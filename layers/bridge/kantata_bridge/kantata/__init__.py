"""Kantata OX API: typed models, typed errors and an HTTP client (see client.py)."""
