"""The demo's convergence act: two changes that never reached the bridge, found and posted anyway.

1. GitHub: the fake GitHub sends an ``issues opened`` delivery that is dropped before the receiver (GitHub
   records it as failed and never retries). A recovery run, the same package code the ``DeliveryRecovery``
   Lambda runs, lists the hook's deliveries, finds the failed one the bridge has no record of, and asks GitHub
   to redeliver it: the receiver queues it and the worker posts it.
2. Jira: the fake Jira's webhook reaches the bridge when an issue is created; then an outage longer than
   Jira's retries swallows its move to Done. A reconciliation run (the ``JiraReconcile`` Lambda's code)
   searches the routed projects, sees that the bridge holds an older version, and queues the newest state as a
   ``reconciled`` delivery: the worker posts it.

``run_convergence(stack, timeout)`` does both on a running local stack and returns what to print; the local
stack's demo calls it after the sample deliveries.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any

from kantata_bridge_dev.resources import REPO_ROOT


@dataclass
class ConvergenceRow:
    tracker: str
    change: str
    lost: str
    found_by: str
    outcome: str
    detail: str


@dataclass
class Convergence:
    rows: list[ConvergenceRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and len(self.rows) == 2 and all(r.outcome == "posted" for r in self.rows)

    def text(self) -> str:
        from kantata_bridge_dev.local_stack import TABLE_WIDTH, format_table

        table = format_table(
            ["tracker", "change", "how it was lost", "found by", "outcome", "report"],
            [[r.tracker, r.change, r.lost, r.found_by, r.outcome, r.detail] for r in self.rows],
            width=TABLE_WIDTH,
        )
        return "Changes that never reached the bridge, recovered\n" + table


def _github_payload(number: int, title: str) -> dict[str, Any]:
    doc = json.loads(
        (REPO_ROOT / "events" / "payloads" / "github_issues_opened.json").read_text(encoding="utf-8")
    )
    doc = copy.deepcopy(doc)
    issue = doc["issue"]
    issue.update({"number": number, "id": 2_690_000_000 + number, "title": title})
    for name in ("url", "html_url"):
        issue[name] = issue[name].rsplit("/", 1)[0] + f"/{number}"
    return doc


def _describe(outcome: Any) -> tuple[str, str]:
    if outcome is None:
        return "pending", "no outcome yet"
    kind = outcome.kind.value
    return kind, (f"report {outcome.report_id}" if kind == "posted" and outcome.report_id else outcome.reason)


def run_convergence(stack: Any, timeout: float = 30.0) -> Convergence:
    """Lose one GitHub delivery and one Jira change on the way in, then recover and reconcile them."""
    from tracker_fakes.github import FakeGitHub
    from tracker_fakes.jira import FakeJira

    deadline = time.monotonic() + timeout
    result = Convergence()
    with FakeGitHub() as github, FakeJira() as jira:
        try:
            result.rows.append(_github(stack, github, deadline))
            result.rows.append(_jira(stack, jira, deadline))
        except Exception as exc:  # noqa: BLE001 - the demo reports what went wrong instead of a traceback
            result.errors.append(f"{type(exc).__name__}: {exc}")
    return result


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _github(stack: Any, github: Any, deadline: float) -> ConvergenceRow:
    from kantata_bridge.recovery.github import RecoverySettings, build_recovery
    from kantata_bridge.recovery.github_api import GitHubClient, HookRef

    from kantata_bridge_dev.local_stack import SAMPLE_SECRETS

    hook = github.add_hook("acme/webapp", url=stack.webhook_url("github"), secret=SAMPLE_SECRETS["github"][0])
    github.delivery_faults.script(["drop"])
    dropped = github.send_event(hook.hook_id, "issues", _github_payload(77, "Payment page times out"))
    settings = RecoverySettings(
        state_table=stack.resources.state_table, hooks=(HookRef.parse(hook.path),), api_url=github.url
    )
    # The demo's fake has no secondary rate limits: no need to space the one redelivery by a second.
    client = GitHubClient(github.token, github.url, min_write_interval=0.0)
    recovery = build_recovery(
        settings, github.token, dynamodb=stack.session().client("dynamodb"), client=client
    )
    try:
        report = recovery.run()
    finally:
        client.close()
    stack.wait_until_drained(_left(deadline))
    outcome, detail = _describe(stack.outcome_store().get(f"github:{hook.hook_id}:{dropped.guid}"))
    found = "recovery: redelivered" if report.redelivered == 1 else f"recovery: {report.to_dict()}"
    return ConvergenceRow(
        "github",
        "acme/webapp#77 opened",
        f"dropped ({dropped.status})",
        found,
        outcome,
        detail,
    )


def _jira(stack: Any, jira: Any, deadline: float) -> ConvergenceRow:
    import datetime as dt

    from kantata_bridge.reconcile.jira import ReconcileSettings, RoutingProjects, build_reconciler

    from kantata_bridge_dev.local_stack import SAMPLE_SECRETS

    jira.set_webhook(stack.webhook_url("jira"), SAMPLE_SECRETS["jira"][0])
    jira.create_issue("PROJ-77", "Refund button missing", status="In Progress", category="indeterminate")
    stack.wait_until_drained(_left(deadline))
    jira.webhook_faults.set_drop_rate(1.0)  # an outage longer than Jira's retries
    jira.update_issue("PROJ-77", status="Done")
    jira.webhook_faults.set_drop_rate(0.0)
    settings = ReconcileSettings(
        state_table=stack.resources.state_table,
        queue_url=stack.resources.queue_url,
        base_url=jira.url,
        routing_config_file=str(stack.routing_config),
        settle=dt.timedelta(
            0
        ),  # the change is seconds old; a deployed sweep leaves the last minutes to webhooks
    )
    reconciler = build_reconciler(
        settings,
        jira.email,
        jira.api_token,
        dynamodb=stack.session().client("dynamodb"),
        projects=RoutingProjects(settings),
    )
    try:
        report = reconciler.run()
    finally:
        reconciler.client.close()
    stack.wait_until_drained(_left(deadline))
    rows = [i for i in report.issues if i.result == "enqueued"]
    outcome = stack.outcome_store().get(f"jira:-:{rows[0].delivery_id}") if rows else None
    kind, detail = _describe(outcome)
    found = "reconciliation: queued" if rows else f"reconciliation: {report.error or 'nothing queued'}"
    if outcome is not None and outcome.origin:
        found += f" ({outcome.origin})"
    return ConvergenceRow("jira", "PROJ-77 moved to Done", "outage > Jira's retries", found, kind, detail)
