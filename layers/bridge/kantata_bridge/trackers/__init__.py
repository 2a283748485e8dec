"""Tracker adapters: one module per tracker.

``base`` defines the interface the receiver uses (verify the signature, read event type and delivery id),
``github`` and ``jira`` implement it, ``registry`` maps URL names to adapters. Payload → TrackerEvent
parsing lives in ``github_events`` / ``jira_events`` and is imported only by the worker.

Keep this module empty of imports: the receiver's cold start imports this package.
"""
