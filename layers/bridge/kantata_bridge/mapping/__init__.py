"""Mapping: a TrackerEvent plus the routing/rules config → what to write to Kantata (pure functions, no I/O).

``config`` parses and validates the config document, ``routing`` picks the Kantata workspace, ``rules`` builds
the status report (colour, details, description, external reference).
"""
