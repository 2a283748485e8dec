"""Local fakes of the trackers' APIs for tests and the demo: GitHub (webhook deliveries: list, redeliver, rate
limits) and Jira Cloud (JQL search, webhooks), in the style of the Kantata sandbox (HTTP on 127.0.0.1, faults,
request log). Dev tools: not shipped in the Lambda layer. See docs/recovery.md."""
