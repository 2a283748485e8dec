"""Tracker adapters: one module per tracker.

``base`` defines the interface the receiver uses (verify the signature, read event type and delivery id),
``github``, ``jira``, ``gitlab`` and ``linear`` implement it (``standard_webhooks`` is the signature scheme
GitLab's signing token uses), ``registry`` maps URL names to adapters. Payload → TrackerEvent parsing lives in
``<tracker>_events`` and is imported only by the worker.

Keep this module empty of imports: the receiver's cold start imports this package.
"""
