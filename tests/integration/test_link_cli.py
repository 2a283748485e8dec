"""`kantata-bridge link add|list|remove` against the Kantata sandbox over HTTP, as an operator runs it, and the
worker's lookup (mapping.links.WorkspaceLinks) finding what the command linked. Every request the command
sends is checked against the OpenAPI descriptions (body, query types, the operation exists) and every
response the sandbox recorded, after each test (when the descriptions are there; the behaviour is tested
either way)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from kantata_bridge.kantata import client as kantata_client
from kantata_bridge.kantata.client import KantataClient, RetryPolicy
from kantata_bridge.mapping.links import WorkspaceLinks
from kantata_bridge_cli.main import main
from kantata_sandbox import openapi
from kantata_sandbox.server import KantataSandbox

pytestmark = pytest.mark.integration

TOKEN_ENV = "LINK_TEST_TOKEN"


def _contract() -> openapi.Contract | None:
    try:
        return openapi.load_contract()
    except openapi.SpecNotFoundError:
        return None  # the behaviour is still tested; only the contract checks need the descriptions


@pytest.fixture
def sandbox(kantata_sandbox: KantataSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[KantataSandbox]:
    """The sandbox, and after the test every response it recorded checked against the OpenAPI descriptions
    (when they are there: ../shared/kantata or KANTATA_OPENAPI_DIR)."""
    monkeypatch.setenv(TOKEN_ENV, kantata_sandbox.token)
    monkeypatch.delenv("KANTATA_BASE_URL", raising=False)
    yield kantata_sandbox
    if _contract() is not None:
        problems = openapi.check_recorded(kantata_sandbox.requests)
        assert problems == [], "sandbox responses break the OpenAPI contract"


@pytest.fixture
def common(sandbox: KantataSandbox) -> list[str]:
    return ["--base-url", sandbox.base_url, "--token-env", TOKEN_ENV]


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's default retry policy, without its sleeps (the number of retries is what is tested)."""
    policy = kantata_client.RetryPolicy
    monkeypatch.setattr(kantata_client, "RetryPolicy", partial(policy, sleep=lambda _: None))


@pytest.fixture
def kantata(sandbox: KantataSandbox) -> Iterator[KantataClient]:
    with KantataClient(sandbox.token, base_url=sandbox.base_url, retry=RetryPolicy.never()) as client:
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def link(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["link", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def rows(table: str) -> list[list[str]]:
    """The printed table's cells (columns are separated by at least two spaces)."""
    return [re.split(r" {2,}", line) for line in table.splitlines()]


def assert_requests_follow_the_contract(sandbox: KantataSandbox) -> list[tuple[str, str]]:
    """Every request the sandbox served: a documented operation, a body and query values the spec takes.
    Returns (method, template) in order."""
    contract = _contract()
    seen = []
    for entry in sandbox.requests:
        if contract is None:
            seen.append((entry.method, re.sub(r"/\d+", "/{id}", openapi.api_route(entry.path))))
            continue
        operation = contract.find(entry.method, entry.path)
        assert operation is not None, f"{entry.method} {entry.path} is not in the OpenAPI descriptions"
        openapi.validate_request_body(entry.method, entry.path, entry.body)
        openapi.validate_query(entry.method, entry.path, entry.query)
        seen.append((entry.method, operation.template))
    return seen


def test_add_list_remove_from_the_command_line(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a workspace
    ws = sandbox.add_workspace("Acme Webapp")

    # When it is linked to a GitHub repository
    code, out, err = link(capsys, "add", "--workspace", ws, "github", "Acme/WebApp", *common)

    # Then Kantata holds the link as an external reference on the workspace, in the bridge's spelling
    assert code == 0, err
    assert err.splitlines()[0] == f"Kantata: {sandbox.base_url}"
    (ref,) = [r for r in sandbox.state.external_references.values() if r.subject_type == "Workspace"]
    assert (ref.subject_id, ref.service_name, ref.service_model, ref.service_model_ref) == (
        int(ws),
        "github",
        "repository",
        "acme/webapp",
    )
    assert (ref.status, ref.external_link) == ("successful", "https://github.com/acme/webapp")
    assert (
        out
        == f"Linked workspace {ws} (Acme Webapp) to github repository acme/webapp (external reference {ref.id}).\n"
    )
    assert "within 5 minutes" in err
    writes = [(m, t) for m, t in assert_requests_follow_the_contract(sandbox) if m != "GET"]
    assert writes == [("POST", "/external_references/create_or_update")]

    # When the links are listed
    sandbox.clear_requests()
    code, out, _ = link(capsys, "list", *common)
    assert code == 0
    assert rows(out) == [
        ["workspace", "title", "tracker", "source", "link"],
        [ws, "Acme Webapp", "github", "acme/webapp", "https://github.com/acme/webapp"],
    ]
    header, row = out.splitlines()
    assert (header.index("title"), header.index("link")) == (row.index("Acme"), row.index("https"))  # aligned
    code, out, _ = link(capsys, "list", "--json", "--tracker", "github", *common)
    assert json.loads(out) == [
        {
            "workspace_id": ws,
            "workspace_title": "Acme Webapp",
            "tracker": "github",
            "service_model": "repository",
            "source": "acme/webapp",
            "link": "https://github.com/acme/webapp",
            "external_reference_id": ref.id,
            "routes": True,
        }
    ]
    # Listing reads links only through GET /external_references, never the rate-limited GET /workspaces
    assert {t for _, t in assert_requests_follow_the_contract(sandbox)} == {"/external_references"}

    # When the link is removed
    sandbox.clear_requests()
    code, out, err = link(capsys, "remove", "--workspace", ws, "github", "acme/webapp", "--json", *common)
    assert code == 0, err
    assert json.loads(out) == {
        "action": "removed",
        "workspace_id": ws,
        "workspace_title": "Acme Webapp",
        "tracker": "github",
        "service_model": "repository",
        "source": "acme/webapp",
        "external_reference_id": ref.id,
    }
    assert sandbox.state.external_references == {}
    assert ("DELETE", "/external_references/{id}") in assert_requests_follow_the_contract(sandbox)
    code, out, err = link(capsys, "list", *common)
    assert (code, out) == (0, "")
    assert err.splitlines()[-1] == "No workspace links found."


def test_a_workspace_linked_by_add_is_found_by_the_worker_lookup_for_the_cache_lifetime(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str], kantata: KantataClient
) -> None:
    # Given a Jira project linked with the command
    ws = sandbox.add_workspace("Project PROJ")
    assert link(capsys, "add", "--workspace", ws, "jira", "proj", *common)[0] == 0
    clock = Clock()
    links = WorkspaceLinks(lambda: kantata, clock=clock)
    sandbox.clear_requests()

    # When the worker looks the project up, Then it finds the workspace, with one request
    assert links.workspaces_for("jira", "PROJ") == (ws,)
    assert links.workspaces_for("jira", "PROJ") == (ws,)
    lookups = [r for r in sandbox.requests if r.path.endswith("/external_references")]
    assert len(lookups) == 1
    assert lookups[0].query == {
        "subject_type": "Workspace",
        "service_name": "jira",
        "service_model": "project",
        "service_model_ref": "PROJ",
        "include": "subject",
        "page": "1",
        "per_page": "200",
    }
    assert_requests_follow_the_contract(sandbox)

    # When the link is removed, Then the cached answer holds until it is 300 s old, and no longer
    assert link(capsys, "remove", "--workspace", ws, "jira", "PROJ", *common)[0] == 0
    clock.now = 299.0
    assert links.workspaces_for("jira", "PROJ") == (ws,)
    clock.now = 300.0
    assert links.workspaces_for("jira", "PROJ") == ()
    # And the empty answer is cached too
    sandbox.clear_requests()
    clock.now = 500.0
    assert links.workspaces_for("jira", "PROJ") == ()
    assert sandbox.requests == []


def test_a_second_source_of_the_same_tracker_replaces_the_first_only_with_replace(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str], kantata: KantataClient
) -> None:
    # Given a workspace linked to acme/webapp
    ws = sandbox.add_workspace("Acme Webapp")
    assert link(capsys, "add", "--workspace", ws, "github", "acme/webapp", *common)[0] == 0
    sandbox.clear_requests()

    # When it is linked to acme/other without --replace, Then it is refused and Kantata is not written
    code, out, err = link(capsys, "add", "--workspace", ws, "github", "acme/other", *common)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[1] == (
        f"kantata-bridge: error: workspace {ws} (Acme Webapp) is already linked to github repository "
        "acme/webapp; a workspace holds one github link"
    )
    assert (
        lines[2]
        == "Add --replace to link it to acme/other instead (acme/webapp then no longer routes to it)."
    )
    assert [r.method for r in sandbox.requests] == ["GET", "GET"]
    links = WorkspaceLinks(lambda: kantata)
    assert links.workspaces_for("github", "acme/webapp") == (ws,)

    # When --replace is given, Then the workspace is linked to acme/other and no longer to acme/webapp
    code, out, err = link(
        capsys, "add", "--workspace", ws, "github", "acme/other", "--replace", "--json", *common
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["action"], result["source"], result["replaced"]) == (
        "replaced",
        "acme/other",
        "acme/webapp",
    )
    links.invalidate()
    assert links.workspaces_for("github", "acme/webapp") == ()
    assert links.workspaces_for("github", "acme/other") == (ws,)
    assert_requests_follow_the_contract(sandbox)


def test_adding_the_same_link_again_writes_nothing_and_a_new_url_updates_it(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    ws = sandbox.add_workspace("Platform")
    argv = ["add", "--workspace", ws, "gitlab", "acme/platform/checkout", *common]
    assert link(capsys, *argv)[0] == 0
    sandbox.clear_requests()

    code, out, _ = link(capsys, *argv)
    assert code == 0
    assert (
        out
        == f"workspace {ws} (Platform) is already linked to gitlab project acme/platform/checkout; nothing changed.\n"
    )
    assert {r.method for r in sandbox.requests} == {"GET"}

    url = "https://gitlab.example.com/acme/platform/checkout"
    code, out, _ = link(capsys, *argv, "--url", url)
    assert code == 0
    assert out.startswith(
        f"Updated the link of workspace {ws} (Platform) to gitlab project acme/platform/checkout"
    )
    (ref,) = sandbox.state.external_references.values()
    assert ref.external_link == url


def test_a_link_written_in_another_spelling_is_rewritten_in_the_bridges_by_add(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given links another tool wrote: GitHub's in its display case and pending, Jira's as the bridge would
    ws = sandbox.add_workspace("Acme Webapp")
    for service, model, source, url, status in (
        ("github", "repository", "Acme/WebApp", "https://github.com/Acme/WebApp", "pending"),
        ("jira", "project", "PROJ", "https://acme.atlassian.net/browse/PROJ", "successful"),
    ):
        sandbox.state.create_or_update_external_reference(
            {"subject_type": "Workspace", "subject_id": int(ws), "service_name": service, "service_model": model,
             "service_model_ref": source, "external_link": url, "status": status}, {},
        )  # fmt: skip

    # When the same links are added with the command
    code, out, _ = link(capsys, "add", "--workspace", ws, "github", "acme/webapp", *common)
    assert code == 0
    assert out.startswith(
        f"Updated the link of workspace {ws} (Acme Webapp) to github repository acme/webapp"
    )
    code, out, _ = link(capsys, "add", "--workspace", ws, "jira", "PROJ", *common)
    assert code == 0
    assert out == f"workspace {ws} (Acme Webapp) is already linked to jira project PROJ; nothing changed.\n"

    # Then the GitHub reference is in the bridge's spelling and successful; the Jira one kept its address
    refs = {r.service_name: r for r in sandbox.state.external_references.values()}
    assert (refs["github"].service_model_ref, refs["github"].status) == ("acme/webapp", "successful")
    assert refs["jira"].external_link == "https://acme.atlassian.net/browse/PROJ"


def test_an_archived_workspace_is_listed_but_routes_nothing(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str], kantata: KantataClient
) -> None:
    # Given two workspaces linked to the same Linear team, the lower id then archived in Kantata
    old = sandbox.add_workspace("Engineering 2025")
    new = sandbox.add_workspace("Engineering")
    assert link(capsys, "add", "--workspace", old, "linear", "ENG", *common)[0] == 0
    code, _, err = link(capsys, "add", "--workspace", new, "linear", "ENG", *common)
    assert code == 0
    assert f"also linked to workspace {old} (Engineering 2025); its events go to the lowest id, {old}" in err
    sandbox.state.workspaces[old].archived = True

    # Then the worker's lookup leaves it out (Kantata marks it archived), and the list says so
    assert WorkspaceLinks(lambda: kantata).workspaces_for("linear", "ENG") == (new,)
    code, out, err = link(capsys, "list", "--tracker", "linear", *common)
    assert code == 0
    assert [old, "Engineering 2025 (archived)", "linear", "ENG"] in rows(out)
    assert "route nothing" in err
    code, out, _ = link(capsys, "list", "--json", *common)
    assert [(row["workspace_id"], row["routes"]) for row in json.loads(out)] == [(old, False), (new, True)]
    # And linking a workspace Kantata hides is refused (404 on the show route)
    code, _, err = link(capsys, "add", "--workspace", old, "jira", "PROJ", *common)
    assert code == 1
    assert f"workspace {old} was not found in Kantata" in err


def test_an_organisation_link_routes_its_repositories_and_a_repository_link_wins(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str], kantata: KantataClient
) -> None:
    org_ws = sandbox.add_workspace("Acme (all)")
    repo_ws = sandbox.add_workspace("Acme Webapp")
    assert link(capsys, "add", "--workspace", org_ws, "github", "acme/*", *common)[0] == 0
    assert link(capsys, "add", "--workspace", repo_ws, "github", "acme/webapp", *common)[0] == 0
    (org_ref,) = [r for r in sandbox.state.external_references.values() if r.subject_id == int(org_ws)]
    assert (org_ref.service_model, org_ref.service_model_ref) == ("organization", "acme")
    assert org_ref.external_link == "https://github.com/acme"

    links = WorkspaceLinks(lambda: kantata)
    assert links.workspaces_for("github", "acme/webapp") == (repo_ws,)
    assert links.workspaces_for("github", "Acme/API") == (org_ws,)
    assert links.workspaces_for("github", "other/api") == ()
    _, out, _ = link(capsys, "list", *common)
    assert [row[3] for row in rows(out)[1:]] == ["acme/*", "acme/webapp"]
    assert_requests_follow_the_contract(sandbox)


# --------------------------------------------------------------------------------------------- bad input


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# (case id, argv (COMMON: the sandbox's URL and token variable), set-up, exit code, words in the error)
# Set-ups: "linked" the workspace {ws} is linked to github acme/webapp; "401" a wrong token; "403"/"422"/"404"
# Kantata answers that to the next write / read; "no token" the variable is empty; "closed" nothing listens.
BAD_INPUT = [
    ("no action", [], None, 2, "the following arguments are required: ACTION"),
    ("unknown action", ["move", "COMMON"], None, 2, "invalid choice: 'move'"),
    ("add: no workspace", ["add", "github", "acme/webapp", "COMMON"], None, 2, "required: --workspace"),
    ("add: workspace not digits", ["add", "--workspace", "4123abc", "github", "a/b", "COMMON"], None, 2, "--workspace must be a Kantata workspace id (digits); got '4123abc'"),
    ("add: unknown tracker", ["add", "--workspace", "{ws}", "svn", "trunk", "COMMON"], None, 2, "invalid choice: 'svn'"),
    ("add: github source", ["add", "--workspace", "{ws}", "github", "acme/web/app", "COMMON"], None, 2, "a GitHub source must be 'owner/repo' or 'owner/*'"),
    ("add: jira issue key", ["add", "--workspace", "{ws}", "jira", "PROJ-12", "COMMON"], None, 2, "'PROJ-12' is not a Jira project key"),
    ("add: gitlab wildcard", ["add", "--workspace", "{ws}", "gitlab", "acme/**", "COMMON"], None, 2, "a link names one GitLab project"),
    ("add: linear key", ["add", "--workspace", "{ws}", "linear", "ENG/x", "COMMON"], None, 2, "is not a Linear team key"),
    ("add: url not http", ["add", "--workspace", "{ws}", "jira", "PROJ", "--url", "ftp://x/PROJ", "COMMON"], None, 2, "--url must be an http(s) address"),
    ("add: base url", ["add", "--workspace", "{ws}", "jira", "PROJ", "--base-url", "127.0.0.1:8900"], None, 2, "--base-url must be an http(s) URL"),
    ("add: no token", ["add", "--workspace", "{ws}", "jira", "PROJ", "COMMON"], "no token", 2, f"set the Kantata token in ${TOKEN_ENV}"),
    ("add: token with a space", ["add", "--workspace", "{ws}", "jira", "PROJ", "COMMON"], "bad token", 2, f"the Kantata token in ${TOKEN_ENV} is not usable"),
    ("add: replaces without --replace", ["add", "--workspace", "{ws}", "github", "acme/other", "COMMON"], "linked", 2, "is already linked to github repository acme/webapp"),
    ("add: workspace not found", ["add", "--workspace", "999999", "jira", "PROJ", "COMMON"], None, 1, "workspace 999999 was not found in Kantata"),
    ("add: token refused", ["add", "--workspace", "{ws}", "jira", "PROJ", "COMMON"], "401", 1, "refused the token (401)"),
    ("add: forbidden", ["add", "--workspace", "{ws}", "jira", "PROJ", "COMMON"], "403", 1, "does not allow this token to link workspace"),
    ("add: refused", ["add", "--workspace", "{ws}", "jira", "PROJ", "COMMON"], "422", 1, "Kantata refused to link workspace"),
    ("add: unreachable", ["add", "--workspace", "{ws}", "jira", "PROJ", "--base-url", "http://127.0.0.1:{closed}/api/v1", "--token-env", TOKEN_ENV], None, 1, "cannot reach Kantata at http://127.0.0.1:"),
    ("list: workspace not digits", ["list", "--workspace", "x", "COMMON"], None, 2, "--workspace must be a Kantata workspace id"),
    ("list: unknown tracker", ["list", "--tracker", "trello", "COMMON"], None, 2, "invalid choice: 'trello'"),
    ("list: token refused", ["list", "COMMON"], "401", 1, "refused the token (401)"),
    ("list: 404", ["list", "COMMON"], "404", 1, "cannot read the github workspace links at"),
    ("remove: nothing to remove", ["remove", "--workspace", "{ws}", "jira", "PROJ", "COMMON"], None, 1, "nothing to remove: workspace"),
    ("remove: another source", ["remove", "--workspace", "{ws}", "github", "acme/other", "COMMON"], "linked", 1, "has no link to github repository acme/other"),
    ("remove: no source", ["remove", "--workspace", "{ws}", "github", "COMMON"], None, 2, "the following arguments are required: SOURCE"),
    ("remove: bad source", ["remove", "--workspace", "{ws}", "github", "a b", "COMMON"], None, 2, "is not a GitHub owner"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "setup", "expected_code", "words"), [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT]
)
def test_bad_input_and_refusals_end_in_one_clear_error(
    argv: list[str],
    setup: str | None,
    expected_code: int,
    words: str,
    sandbox: KantataSandbox,
    common: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_retry_sleep: None,
) -> None:
    ws = sandbox.add_workspace("Acme Webapp")
    if setup == "linked":
        assert link(capsys, "add", "--workspace", ws, "github", "acme/webapp", *common)[0] == 0
    elif setup == "no token":
        monkeypatch.setenv(TOKEN_ENV, "")
    elif setup == "bad token":
        monkeypatch.setenv(TOKEN_ENV, "two words")
    elif setup == "401":
        monkeypatch.setenv(TOKEN_ENV, "not-the-sandbox-token")
    elif setup in ("403", "422"):
        sandbox.faults.script([int(setup)], method="POST")
    elif setup == "404":
        sandbox.faults.script([404], method="GET")
    values = {"ws": ws, "closed": str(_closed_port())}
    args: list[str] = []
    for arg in argv:
        args += common if arg == "COMMON" else [arg.format(**values)]

    code, out, err = link(capsys, *args)

    errors = [line for line in err.splitlines() if line.startswith("kantata-bridge: error: ")]
    assert code == expected_code, err
    assert len(errors) == 1, err
    assert words in errors[0], err
    assert "Traceback" not in err
    assert out == ""
    secret = os.environ.get(TOKEN_ENV, "")
    if secret and secret != sandbox.token:  # the sandbox's own token is printed in the hint, on purpose
        assert secret not in err
    # Only the lines before the error are the target line and retries; at most one hint after it
    after = err.splitlines()[err.splitlines().index(errors[0]) + 1 :]
    assert len(after) <= 1, err


def test_retries_are_one_line_each_and_json_stays_clean(
    sandbox: KantataSandbox, common: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Kantata answers the first read with 503 (the client retries, quickly: Kantata's own policy)
    ws = sandbox.add_workspace("Acme Webapp")
    sandbox.faults.script([503], method="GET")

    code, out, err = link(capsys, "add", "--workspace", ws, "jira", "PROJ", "--json", *common)

    assert code == 0
    assert json.loads(out)["action"] == "linked"
    retries = [line for line in err.splitlines() if "retry" in line]
    assert len(retries) == 1
    assert retries[0].startswith(
        f"kantata-bridge: warning: Kantata GET /workspaces/{ws} failed (503, unavailable); retry 1 in "
    )


def test_unreachable_kantata_names_the_url_and_each_retry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_retry_sleep: None
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api/v1"
    monkeypatch.setenv("KANTATA_TOKEN", "secret-token-value")

    code, out, err = link(capsys, "list", "--base-url", url)

    lines = err.splitlines()
    assert code == 1
    assert out == ""
    assert lines[0] == f"Kantata: {url}"
    assert [line.split(" in ")[0] for line in lines[1:5]] == [
        f"kantata-bridge: warning: Kantata GET /external_references failed (connection error); retry {n}"
        for n in (1, 2, 3, 4)
    ]
    assert lines[5] == (
        f"kantata-bridge: error: cannot reach Kantata at {url}: GET /external_references failed: "
        "connection error (ConnectionError)"
    )
    assert lines[6].startswith("Check --base-url. For the local sandbox: kantata-sandbox --port 8900")
    assert len(lines) == 7
    assert "secret-token-value" not in err


def test_ctrl_c_ends_in_one_line_with_130(
    sandbox: KantataSandbox,
    common: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = sandbox.add_workspace("Acme Webapp")

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(KantataClient, "create_or_update_external_reference", interrupted)
    code, out, err = link(capsys, "add", "--workspace", ws, "jira", "PROJ", *common)
    assert code == 130
    assert out == ""
    assert err.splitlines()[-1] == (
        "kantata-bridge: interrupted; run 'link list' to see whether the link was written"
    )
    assert "Traceback" not in err


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(sandbox: KantataSandbox) -> None:
    # Given links to list, and standard output a pipe whose reader is already gone (`… | head` that exited)
    for n in range(3):
        ws = sandbox.add_workspace(f"W{n}")
        sandbox.state.create_or_update_external_reference(
            {"subject_type": "Workspace", "subject_id": int(ws), "service_name": "jira",
             "service_model": "project", "service_model_ref": f"P{n}"}, {},
        )  # fmt: skip
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "KANTATA_BASE_URL"}
    env[TOKEN_ENV] = sandbox.token
    try:
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "kantata_bridge_cli", "link", "list", "--base-url", sandbox.base_url,
             "--token-env", TOKEN_ENV],
            stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "kantata-bridge: error: the output was closed before everything was written (broken pipe)"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [["link", "--help"], ["link", "add", "--help"], ["link", "list", "--help"], ["link", "remove", "--help"]],
)
def test_help_ends_with_examples_and_exit_codes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    examples = capsys.readouterr().out.split("\nexamples:\n", 1)[1]
    assert "  kantata-bridge link " in examples
    assert "exit codes: 0 " in examples
