"""Fault injection in the Kantata sandbox: scripted statuses, seeded random 429/503, Retry-After, dropped
connections, latency, the HTTP control endpoint and the console script. All traffic goes to 127.0.0.1,
bounded in count; nothing asserts wall-clock times."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from kantata_sandbox.faults import FaultPlan, FaultPlanError
from kantata_sandbox.server import KantataSandbox

from tests.unit.sandbox_http import TIMEOUT, Api

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(kantata_sandbox_contract: KantataSandbox) -> Api:
    return Api(kantata_sandbox_contract)


def report_body(workspace: str) -> dict[str, object]:
    return {"status_report": {"workspace_id": workspace, "color": "green", "description": "ok"}}


def test_scripted_statuses_are_consumed_one_per_request_and_do_not_touch_state(api: Api) -> None:
    # Given a script of two 503s then a normal answer
    workspace = api.sandbox.add_workspace("Alpha")
    api.sandbox.faults.script([503, 503, None])
    # When the client posts the same report three times
    statuses = [api.post("/status_reports", report_body(workspace)).status_code for _ in range(3)]
    # Then it sees 503, 503, 200, only the third changed state, and the script is used up
    assert statuses == [503, 503, 200]
    assert len(api.sandbox.state.status_reports) == 1
    assert [r.fault for r in api.sandbox.requests] == ["script", "script", "script"]
    assert api.post("/status_reports", report_body(workspace)).status_code == 200


def test_injected_errors_use_kantata_error_body(api: Api) -> None:
    api.sandbox.faults.script([429, 503])
    throttled = api.get("/task_status_sets")
    unavailable = api.get("/task_status_sets")
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["type"] == "system"
    assert "Retry-After" not in throttled.headers  # Kantata documents no Retry-After
    assert unavailable.status_code == 503


def test_script_can_target_a_method_and_path(api: Api) -> None:
    workspace = api.sandbox.add_workspace("Alpha")
    api.sandbox.faults.script([503], method="POST", path_prefix="/status_reports")
    assert api.get("/status_reports").status_code == 200
    assert api.post("/task_status_sets", {"task_status_set": {"name": "X"}}).status_code == 200
    assert api.post("/status_reports.json", report_body(workspace)).status_code == 503
    assert api.post("/status_reports.json", report_body(workspace)).status_code == 200


def test_retry_after_is_sent_on_429_when_asked(api: Api) -> None:
    api.sandbox.faults.set_retry_after(2)
    api.sandbox.faults.script([429, 503])
    assert api.get("/task_status_sets").headers["Retry-After"] == "2"
    assert "Retry-After" not in api.get("/task_status_sets").headers


def test_seeded_rate_repeats_the_same_faults() -> None:
    def run() -> list[int]:
        with KantataSandbox(faults=FaultPlan(rate=0.5, seed=7)) as sandbox:
            api = Api(sandbox)
            return [api.get("/task_status_sets").status_code for _ in range(30)]

    first_run, second_run = run(), run()
    assert first_run == second_run
    assert {429, 503, 200} == set(first_run)


def test_rate_one_faults_every_request_with_the_given_statuses(api: Api) -> None:
    api.sandbox.faults.set_rate(1.0, statuses=(429,), seed=1)
    assert {api.get("/workspaces").status_code for _ in range(5)} == {429}
    api.sandbox.faults.clear()
    assert api.get("/workspaces").status_code == 200


def test_dropped_connection_gets_no_answer_and_changes_nothing(api: Api) -> None:
    workspace = api.sandbox.add_workspace("Alpha")
    api.sandbox.faults.script(["drop"])
    with pytest.raises(requests.ConnectionError):
        api.post("/status_reports", report_body(workspace))
    assert api.sandbox.state.status_reports == {}
    (dropped,) = api.sandbox.requests
    assert (dropped.status, dropped.fault, dropped.response) == (0, "script", None)
    # The next request on a new connection is served normally
    assert api.post("/status_reports", report_body(workspace)).status_code == 200


def test_drop_after_processes_the_write_but_loses_the_answer(api: Api) -> None:
    workspace = api.sandbox.add_workspace("Alpha")
    api.sandbox.faults.script(["drop_after"])
    with pytest.raises(requests.ConnectionError):
        api.post("/status_reports", report_body(workspace))
    assert len(api.sandbox.state.status_reports) == 1


def test_drop_rate_one_drops_every_request(api: Api) -> None:
    api.sandbox.faults.set_drop_rate(1.0)
    for _ in range(3):
        with pytest.raises(requests.ConnectionError):
            api.get("/workspaces")
    assert [r.status for r in api.sandbox.requests] == [0, 0, 0]


def test_latency_holds_the_answer_back_past_a_short_read_timeout(api: Api) -> None:
    # Given 0.6 s of added latency (set at run time)
    api.sandbox.faults.set_latency(0.6)
    # When a client waits at most 0.1 s for the answer, Then it times out: the answer really was held back
    with pytest.raises(requests.ReadTimeout):
        api.session.get(api.url("/workspaces"), timeout=(2, 0.1))
    # And with the latency gone, the same call is answered
    api.sandbox.faults.set_latency(0)
    assert api.get("/workspaces").status_code == 200


def test_fault_plan_refuses_bad_settings() -> None:
    plan = FaultPlan()
    with pytest.raises(FaultPlanError, match="rate"):
        plan.set_rate(1.5)
    with pytest.raises(FaultPlanError, match="status"):
        plan.script([700])
    with pytest.raises(FaultPlanError, match="latency"):
        plan.set_latency(-1)
    with pytest.raises(FaultPlanError):
        FaultPlan(drop_rate=2)


@pytest.mark.parametrize(
    "settings",
    [{"clear": True, "statuses": []}, {"clear": True, "script": {"statuses": [503], "method": 5}}],
    ids=["no-statuses", "script-method-not-a-string"],
)
def test_a_refused_fault_setting_changes_nothing(settings: dict[str, object]) -> None:
    # Given a plan with latency and a scripted 503
    plan = FaultPlan(latency=0.05)
    plan.script([503])
    before = plan.describe()
    # When a setting that clears everything is refused
    with pytest.raises(FaultPlanError):
        plan.configure(settings)
    # Then the plan is as it was: nothing of the refused settings was applied, not even the clear
    assert plan.describe() == before


def test_http_control_endpoint_drives_faults(api: Api) -> None:
    control = api.sandbox.url + "/_sandbox/faults"
    # When a script and a Retry-After are set over HTTP
    set_up = requests.post(
        control,
        json={
            "script": {"statuses": [429, None], "method": "GET", "path_prefix": "/workspaces"},
            "retry_after": 1,
        },
        timeout=TIMEOUT,
    )
    assert set_up.status_code == 200
    assert set_up.json()["scripts"] == [
        {"statuses": [429, None], "method": "GET", "path_prefix": "/workspaces"}
    ]
    # Then the API obeys, and control calls themselves are never faulted
    throttled = api.get("/workspaces")
    assert (throttled.status_code, throttled.headers.get("Retry-After")) == (429, "1")
    assert requests.get(control, timeout=TIMEOUT).json()["scripts"] == [
        {"statuses": [None], "method": "GET", "path_prefix": "/workspaces"}
    ]
    # A bad setting is a 400 naming it, and nothing is applied
    bad = requests.post(control, json={"rate": 3}, timeout=TIMEOUT)
    assert bad.status_code == 400
    assert "rate" in bad.json()["error"]
    unknown = requests.post(control, json={"rates": 0.1}, timeout=TIMEOUT)
    assert unknown.status_code == 400
    assert requests.get(control, timeout=TIMEOUT).json()["rate"] == 0.0
    # clear removes everything
    cleared = requests.post(control, json={"clear": True, "latency_ms": 5}, timeout=TIMEOUT).json()
    assert (cleared["scripts"], cleared["retry_after"], cleared["latency_ms"]) == ([], None, 5.0)
    assert requests.delete(control, timeout=TIMEOUT).json()["latency_ms"] == 0.0


def test_console_script_serves_seeded_workspaces_with_faults_until_interrupted() -> None:
    # Given the console script started on a free port with a workspace and a scripted 503
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "local"), str(REPO)])}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kantata_sandbox.server",
            "--port",
            "0",
            "--token",
            "T",
            "--workspace",
            "Alpha",
            "--script",
            "503",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        base_url = lines[1].split(" on ")[1].split(" ")[0]
        assert "token: as given by --token" in lines[1]  # a token the user chose is never echoed
        headers = {"Authorization": "Bearer T"}
        # Then the first call is the scripted 503 and the next sees the seeded workspace
        assert requests.get(f"{base_url}/workspaces", headers=headers, timeout=TIMEOUT).status_code == 503
        workspaces = requests.get(f"{base_url}/workspaces", headers=headers, timeout=TIMEOUT).json()[
            "workspaces"
        ]
        assert [w["title"] for w in workspaces.values()] == ["Alpha"]
    finally:
        # When interrupted (Ctrl-C), Then it stops cleanly
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    assert code == 0
