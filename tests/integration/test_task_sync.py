"""Task sync end to end: the real worker handler in-process, moto, and the Kantata sandbox over HTTP.

Given a Kantata workspace whose task status set mirrors the Jira workflow and tasks linked to tracker objects by
external reference, when the tracker's changes arrive, then each linked task takes the tracker's status: once,
in order, and never moved back by a stale event.
"""

from __future__ import annotations

import datetime as dt

import pytest
from kantata_bridge.kantata.client import KantataClient
from kantata_bridge.kantata.models import NewStory, StoryExternalReference, WorkspaceTaskStatusSet
from moto import mock_aws

from tests.support.worker_env import (
    FakeLambdaContext,
    SqsSimulator,
    WorkerHarness,
    deliver_concurrently,
    envelope_for,
    fake_aws_env,
    load_handler,
    sqs_event,
)

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
WORKFLOW = (
    ("To Do", "not started"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
)


@pytest.fixture
def aws(monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        yield


def start(sandbox, tmp_path, mode="update", **route_extra):
    routes = [
        {"tracker": "github", "repository": "acme/webapp", "workspace_id": "{workspace}", "tasks": mode},
        {"tracker": "jira", "project": "PROJ", "workspace_id": "{workspace}", "tasks": mode, **route_extra},
    ]
    harness = WorkerHarness(sandbox, tmp_path, routes=routes)
    harness.runtime.default_worker().clock = lambda: NOW
    client = KantataClient(sandbox.token, sandbox.base_url)
    # The set as `catalog apply` leaves it: Kantata's four default statuses renamed, then the rest added
    status_set = client.create_task_status_set("PROJ workflow")
    defaults = {s.category: s for s in client.get_task_status_set(status_set.id).statuses}
    for name, category in WORKFLOW:
        default = defaults.pop(category, None)
        if default is not None:
            client.update_custom_task_status(default.id, status=name)
        else:
            client.create_custom_task_status(status_set.id, name, category)
    client.bulk_update_workspace_task_status_sets(
        [WorkspaceTaskStatusSet(workspace_id=int(harness.workspace_id), status_set_id=int(status_set.id))]
    )
    return harness, client


def linked_task(client, workspace_id, service_name, model, ref, status):
    return client.create_story(
        NewStory(
            workspace_id=workspace_id,
            title=f"Task for {ref}",
            status=status,
            external_reference=StoryExternalReference(service_name, model, ref, status="successful"),
        )
    )


def jira_update(delivery, status, category, at, previous="To Do"):
    """A Jira issue_updated delivery for PROJ-12 that moves it to ``status`` at ``at`` (an ISO time)."""

    def edit(doc):
        fields = doc["issue"]["fields"]
        fields["status"]["name"] = status
        fields["status"]["statusCategory"]["key"] = category
        fields["updated"] = at
        doc["timestamp"] = int(dt.datetime.fromisoformat(at.replace("+0000", "+00:00")).timestamp() * 1000)
        doc["changelog"]["items"][0].update(fromString=previous, toString=status)

    return envelope_for("jira_issue_updated_in_progress", delivery_id=delivery, edit=edit)


def story(client, story_id):
    return client.get_story(story_id)


def posts_to(harness, prefix):
    return [r for r in harness.sandbox.requests if r.method == "POST" and r.path.startswith(prefix)]


def test_a_jira_issue_moved_through_its_workflow_moves_its_linked_task_through_the_same_statuses(
    aws, kantata_sandbox, tmp_path
):
    harness, client = start(kantata_sandbox, tmp_path)
    try:
        handler = load_handler()
        task = linked_task(client, harness.workspace_id, "jira", "issue", "PROJ-12", "To Do")
        steps = [
            ("d1", "In Progress", "indeterminate", "2026-11-21T10:00:00.000+0000", "To Do"),
            ("d2", "In Review", "indeterminate", "2026-11-21T11:00:00.000+0000", "In Progress"),
            ("d3", "Done", "done", "2026-11-21T12:00:00.000+0000", "In Review"),
        ]
        seen, calls = [], []
        for delivery, status, category, at, previous in steps:
            kantata_sandbox.clear_requests()
            assert handler.lambda_handler(
                sqs_event([jira_update(delivery, status, category, at, previous)]), FakeLambdaContext()
            ) == {"batchItemFailures": []}
            calls.append([(r.method, r.path.split("/")[3]) for r in kantata_sandbox.requests])
            now = story(client, task.id)
            ref = next(r for r in now.external_references if r.service_name == "jira")
            seen.append((now.status, now.state, ref.external_status, ref.status))
        assert seen == [
            ("In Progress", "started", "In Progress", "successful"),
            ("In Review", "started", "In Review", "successful"),
            ("Done", "completed", "Done", "successful"),
        ]
        # The first change finds the task by its reference; then the task is known: one report, one task write
        assert calls[0][0] == ("POST", "status_reports")
        assert ("GET", "stories") in calls[0]
        assert calls[1:] == [[("POST", "status_reports"), ("PUT", "stories")]] * 2
        outcome = harness.outcomes().get("jira:-:d3")
        assert outcome.task_id == task.id
        assert outcome.task == (
            f"updated: moved task {task.id} from 'In Review' to 'Done' (same name as jira's 'Done')"
        )
    finally:
        harness.close()


def test_a_github_issue_closed_and_a_pull_request_merged_complete_their_tasks(aws, kantata_sandbox, tmp_path):
    harness, client = start(kantata_sandbox, tmp_path)
    try:
        handler = load_handler()
        issue = linked_task(client, harness.workspace_id, "github", "issue", "acme/webapp#42", "In Progress")
        pull = linked_task(
            client, harness.workspace_id, "github", "pull_request", "acme/webapp#43", "In Review"
        )
        for name in ("github_issues_closed", "github_pull_request_closed_merged"):
            assert handler.lambda_handler(sqs_event([envelope_for(name)]), FakeLambdaContext()) == {
                "batchItemFailures": []
            }
        # "closed" and "merged" are no status of the set: the default of the completed category, Done
        assert (story(client, issue.id).status, story(client, pull.id).status) == ("Done", "Done")
    finally:
        harness.close()


def test_a_status_with_no_counterpart_leaves_the_task_and_records_why_while_the_report_is_posted(
    aws, kantata_sandbox, tmp_path
):
    harness, client = start(kantata_sandbox, tmp_path)
    try:
        handler = load_handler()
        task = linked_task(client, harness.workspace_id, "jira", "issue", "PROJ-12", "In Review")
        # Jira's "No Category" statuses (category key "undefined") have no Kantata category
        env = jira_update("d1", "Parked Idea", "undefined", "2026-11-21T10:00:00.000+0000")
        assert handler.lambda_handler(sqs_event([env]), FakeLambdaContext()) == {"batchItemFailures": []}
        assert story(client, task.id).status == "In Review"
        outcome = harness.outcomes().get(env.dedupe_key)
        assert outcome.kind.value == "posted"
        assert outcome.report_id
        assert outcome.task == (
            f"left alone: task {task.id} left at 'In Review': no 'Parked Idea' in set 'PROJ workflow', "
            "and no status of category 'undefined' to fall back to"
        )
    finally:
        harness.close()


def test_a_stale_update_never_moves_a_task_back(aws, kantata_sandbox, tmp_path):
    harness, client = start(kantata_sandbox, tmp_path)
    try:
        handler = load_handler()
        task = linked_task(client, harness.workspace_id, "jira", "issue", "PROJ-12", "To Do")
        newer = jira_update("d2", "Done", "done", "2026-11-21T12:00:00.000+0000")
        older = jira_update("d1", "In Progress", "indeterminate", "2026-11-21T10:00:00.000+0000")
        for env in (newer, older):
            handler.lambda_handler(sqs_event([env]), FakeLambdaContext())
        assert story(client, task.id).status == "Done"
        assert harness.outcomes().get(older.dedupe_key).reason.startswith("stale:")
    finally:
        harness.close()


def test_create_mode_makes_one_task_per_object_with_the_creating_delivery_sent_five_times_concurrently(
    aws, kantata_sandbox, tmp_path
):
    harness, client = start(kantata_sandbox, tmp_path, mode="create")
    try:
        env = jira_update("d1", "In Progress", "indeterminate", "2026-11-21T10:00:00.000+0000")
        # And the first create's answer is lost (Kantata makes the task, the connection drops)
        kantata_sandbox.faults.script(["drop_after"], method="POST", path_prefix="/stories")
        errors = deliver_concurrently(env, copies=5)
        assert errors == []
        linked = list(
            client.list_stories(
                external_reference_service_name="jira",
                external_reference_service_model="issue",
                external_reference_service_model_refs=["PROJ-12"],
            )
        )
        assert [(s.status, s.workspace_id) for s in linked] == [("In Progress", harness.workspace_id)]
        assert len(posts_to(harness, "/api/v1/stories")) == 1  # the lost create was found, not repeated
        assert len(posts_to(harness, "/api/v1/status_reports")) == 1
    finally:
        harness.close()


def test_a_redelivery_after_a_failed_task_write_finds_its_report_and_finishes_the_task(
    aws, kantata_sandbox, tmp_path
):
    harness, client = start(kantata_sandbox, tmp_path)
    try:
        handler = load_handler()
        task = linked_task(client, harness.workspace_id, "jira", "issue", "PROJ-12", "To Do")
        kantata_sandbox.faults.script([503], method="PUT", path_prefix="/stories")
        env = jira_update("d1", "In Progress", "indeterminate", "2026-11-21T10:00:00.000+0000")
        sim = SqsSimulator(handler.lambda_handler, max_receive_count=5)
        sim.send([env])
        sim.drain()
        assert sim.dlq == []
        assert story(client, task.id).status == "In Progress"
        assert len(posts_to(harness, "/api/v1/status_reports")) == 1  # found by its marker, not posted again
    finally:
        harness.close()


def test_explain_shows_the_task_a_delivery_would_move_from_which_status_to_which_and_why(
    aws, kantata_sandbox, tmp_path, monkeypatch, capsys
):
    import json

    from kantata_bridge_cli.main import main

    harness, client = start(kantata_sandbox, tmp_path)
    try:
        task = linked_task(client, harness.workspace_id, "jira", "issue", "PROJ-12", "To Do")
        env = jira_update("d1", "QA", "indeterminate", "2026-11-21T10:00:00.000+0000")
        body = tmp_path / "body.json"
        body.write_bytes(env.body)
        monkeypatch.setenv("SANDBOX_TOKEN", kantata_sandbox.token)
        argv = ["explain", "--tracker", "jira", "--body", str(body), "--config", str(harness.config_path)]
        argv += ["--kantata-token-env", "SANDBOX_TOKEN", "--kantata-base-url", kantata_sandbox.base_url]
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["task"]["would"] == (
            f"move task {task.id} from 'To Do' to 'In Progress' "
            "(no 'QA' in set 'PROJ workflow': default of category 'started')"
        )
        assert "catalog apply" in doc["task"]["hint"]
        # And nothing was written: the task is where it was
        assert client.get_story(task.id).status == "To Do"
    finally:
        harness.close()


def test_a_workspace_linked_by_link_add_receives_events_with_no_route_in_the_document(
    aws, kantata_sandbox, tmp_path, monkeypatch, capsys
):
    from kantata_bridge_cli.main import main

    # Given a routing document with no route for GitHub, links taking tasks, and a second workspace
    harness = WorkerHarness(
        kantata_sandbox,
        tmp_path,
        routes=[{"tracker": "jira", "project": "OTHER", "workspace_id": "{workspace}"}],
        extra_config={"links": {"tasks": "update"}},
    )
    try:
        harness.runtime.default_worker().clock = lambda: NOW
        client = KantataClient(kantata_sandbox.token, kantata_sandbox.base_url)
        linked = kantata_sandbox.add_workspace("Webapp (linked)")
        task = linked_task(client, linked, "github", "issue", "acme/webapp#42", "not started")
        # When an operator links the workspace to the repository with the CLI
        monkeypatch.setenv("SANDBOX_TOKEN", kantata_sandbox.token)
        argv = [
            "link",
            "add",
            "--workspace",
            linked,
            "github",
            "acme/webapp",
            "--base-url",
            kantata_sandbox.base_url,
        ]
        assert main([*argv, "--token-env", "SANDBOX_TOKEN"]) == 0
        capsys.readouterr()
        # Then the repository's events are reported in that workspace and its linked task follows
        handler = load_handler()
        env = envelope_for("github_issues_closed")
        assert handler.lambda_handler(sqs_event([env]), FakeLambdaContext()) == {"batchItemFailures": []}
        outcome = harness.outcomes().get(env.dedupe_key)
        assert (outcome.kind.value, outcome.workspace_id) == ("posted", linked)
        assert [r.workspace_id for r in client.list_status_reports(workspace_id=linked)] == [linked]
        assert story(client, task.id).status == "completed"
    finally:
        harness.close()
