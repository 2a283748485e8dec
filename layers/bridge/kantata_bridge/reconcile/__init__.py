"""Reconciliation: a scheduled sweep of a tracker's API for objects changed since the last sweep, queueing a
synthetic delivery for each change the bridge never processed (Jira today; GitLab and Linear fit the same
design, see docs/recovery.md)."""
