"""Status catalog sync: mirror tracker workflows (Jira projects, GitHub repositories) into Kantata task
status sets, declaratively, as plan / apply (see docs/catalog.md).

Modules: ``config`` (the catalog file), ``jira`` (a Jira workflow-statuses export → a desired set),
``plan`` (pure planning), ``apply`` (reading Kantata and carrying a plan out), ``report`` (text and JSON),
``job`` (the Lambda's configuration and run).
"""
