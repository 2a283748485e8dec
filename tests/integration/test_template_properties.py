"""The SAM template keeps the properties a safe, working deployment relies on.

The template is parsed with cfn-lint's decoder (it understands the CloudFormation short tags such as !Ref and
!GetAtt), so these tests read the same document `sam deploy` would send.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE_PATH)))


def _resources(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_name}


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A function's properties with the template's Globals applied underneath (as SAM does)."""
    merged = dict(template["Globals"]["Function"])
    merged.update(template["Resources"][name]["Properties"])
    return merged


def _parameter_default(template: dict[str, Any], ref: Any) -> Any:
    assert isinstance(ref, dict), f"expected a parameter reference, got {ref!r}"
    assert set(ref) == {"Ref"}, f"expected a parameter reference, got {ref!r}"
    return template["Parameters"][ref["Ref"]]


def _worker_event(template: dict[str, Any]) -> dict[str, Any]:
    events = template["Resources"]["SyncWorkerFunction"]["Properties"]["Events"]
    (sqs_event,) = [e for e in events.values() if e["Type"] == "SQS"]
    return dict(sqs_event["Properties"])


# ---------------------------------------------------------------- queue and worker


def test_queue_visibility_timeout_covers_six_worker_timeouts_plus_the_batching_window(template):
    # Given the worker's timeout and the largest batching window the parameter allows
    worker_timeout = _function(template, "SyncWorkerFunction")["Timeout"]
    window = _parameter_default(template, _worker_event(template)["MaximumBatchingWindowInSeconds"])
    # When reading the queue's visibility timeout
    visibility = template["Resources"]["EventsQueue"]["Properties"]["VisibilityTimeout"]
    # Then a message cannot reappear while a worker may still be processing it
    assert visibility >= 6 * worker_timeout + window["MaxValue"]


def test_worker_reports_partial_batch_failures(template):
    assert _worker_event(template)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_worker_concurrency_is_capped_by_a_parameter_of_at_least_two(template):
    cap = _worker_event(template)["ScalingConfig"]["MaximumConcurrency"]
    param = _parameter_default(template, cap)
    assert param["MinValue"] == 2  # the SQS event source's minimum
    assert param["Default"] >= 2


def test_worker_batch_size_and_window_are_parameters(template):
    event = _worker_event(template)
    assert _parameter_default(template, event["BatchSize"])["Default"] >= 1
    assert _parameter_default(template, event["MaximumBatchingWindowInSeconds"])["Default"] >= 0


def test_queue_dead_letters_after_max_receive_count_parameter(template):
    redrive = template["Resources"]["EventsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert _parameter_default(template, redrive["maxReceiveCount"])["Default"] >= 1


def test_dead_letter_queue_keeps_messages_14_days_longer_than_the_source_queue(template):
    dlq = template["Resources"]["DeadLetterQueue"]["Properties"]
    queue = template["Resources"]["EventsQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # SQS keeps the original enqueue time when dead-lettering, so the DLQ must outlive the source queue.
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


@pytest.mark.parametrize("queue", ["EventsQueue", "DeadLetterQueue"])
def test_queues_are_encrypted_at_rest(template, queue):
    props = template["Resources"][queue]["Properties"]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


# ---------------------------------------------------------------- tables


@pytest.mark.parametrize("table", ["StateTable"])
def test_tables_are_on_demand_with_point_in_time_recovery_and_encryption(template, table):
    props = template["Resources"][table]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_there_is_no_separate_idempotency_table(template):
    # Idempotency state lives on each delivery's record in the state table (worker/idempotency.py)
    assert "IdempotencyTable" not in template["Resources"]


def test_state_table_has_the_keys_gsi_and_ttl_the_worker_writes(template):
    # Given an outcome item as the worker writes it
    from kantata_bridge.worker.outcomes import GSI_NAME, Outcome, OutcomeKind, OutcomeStore

    outcome = Outcome(
        "jira:-:d1", OutcomeKind.POSTED, "posted", "2026-11-24T00:00:00", object_key="jira:issue:P-1"
    )
    item = OutcomeStore("state", client=object()).outcome_item(outcome)
    props = template["Resources"]["StateTable"]["Properties"]
    # Then the table's keys, GSI and TTL are attributes of that item
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == GSI_NAME
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["gsi1pk", "gsi1sk"]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    ttl = props["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True
    assert "N" in item[ttl["AttributeName"]]  # DynamoDB TTL needs a number (epoch seconds)
    defined = {a["AttributeName"] for a in props["AttributeDefinitions"]}
    assert defined == {"pk", "sk", "gsi1pk", "gsi1sk"}
    assert defined <= set(item)


# ---------------------------------------------------------------- payload bucket


def test_payload_bucket_blocks_public_access_and_is_encrypted(template):
    props = template["Resources"]["PayloadBucket"]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"aws:kms", "AES256"}


def test_payload_bucket_policy_denies_requests_without_tls(template):
    policy = template["Resources"]["PayloadBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "PayloadBucket"}
    denies = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert denies, "no statement denies aws:SecureTransport=false"


def test_payloads_expire_after_the_dead_letter_queue_retention(template):
    rules = template["Resources"]["PayloadBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if r["Status"] == "Enabled" and "ExpirationInDays" in r]
    assert expiring
    days = _parameter_default(template, expiring[0]["ExpirationInDays"])
    dlq_days = template["Resources"]["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] / 86400
    # A dead-lettered envelope whose body was claim-checked must still find its body when redriven.
    assert days["MinValue"] > dlq_days


# ---------------------------------------------------------------- secrets


def test_no_secret_value_is_inline_in_the_template(template):
    # Given every secret resource
    secrets = _resources(template, "AWS::SecretsManager::Secret")
    assert set(secrets) == {
        "KantataTokenSecret",
        "WebhookSecrets",
        "GithubRecoveryTokenSecret",
        "JiraReconcileCredentialsSecret",
    }
    for secret in secrets.values():
        # Then its value is generated as a placeholder, never written into the template
        assert "SecretString" not in secret["Properties"]
        assert "GenerateSecretString" in secret["Properties"]
    # And no parameter could carry a secret value (NoEcho parameters end up in the stack's history)
    for name, param in template["Parameters"].items():
        assert not param.get("NoEcho"), name
        assert not re.search(r"token|secret|password", name, re.IGNORECASE), name


def test_functions_get_secrets_by_reference_only(template):
    receiver = _function(template, "ReceiverFunction")["Environment"]["Variables"]
    worker = _function(template, "SyncWorkerFunction")["Environment"]["Variables"]
    assert receiver["WEBHOOK_SECRETS_NAME"] == {"Ref": "WebhookSecrets"}
    assert worker["KANTATA_TOKEN_SECRET_NAME"] == {"Ref": "KantataTokenSecret"}


# ---------------------------------------------------------------- functions


FUNCTIONS = [
    "ReceiverFunction",
    "SyncWorkerFunction",
    "CatalogSyncFunction",
    "DeliveryRecoveryFunction",
    "JiraReconcileFunction",
]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_is_arm64_python312_and_uses_the_bridge_layer(template, name):
    fn = _function(template, name)
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["arm64"]
    assert {"Ref": "BridgeLayer"} in fn["Layers"]
    assert fn["Handler"] == "app.lambda_handler"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_handler_file_exists(template, name):
    fn = _function(template, name)
    app = ROOT / fn["CodeUri"] / "app.py"
    assert app.is_file(), f"{name}: {app} is missing"
    assert "def lambda_handler(" in app.read_text()


def test_layer_is_built_by_sam_from_the_bridge_package(template):
    layer = template["Resources"]["BridgeLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/bridge/"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert (ROOT / "layers/bridge/requirements.txt").is_file()
    assert (ROOT / "layers/bridge/kantata_bridge/__init__.py").is_file()


def test_powertools_settings_are_global(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "kantata-bridge"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "KantataBridge"
    # The variable Powertools reads first (LOG_LEVEL is its legacy fallback); README and docs name the same one
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert "LOG_LEVEL" not in env


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "ReceiverFunction",
            {
                "QUEUE_URL",
                "PAYLOAD_BUCKET",
                "WEBHOOK_SECRETS_NAME",
                "ENABLED_TRACKERS",
                "GITLAB_AUTH_MODE",
                "GITLAB_SIGNATURE_TOLERANCE_SECONDS",
                "LINEAR_SIGNATURE_TOLERANCE_SECONDS",
            },
        ),
        (
            "SyncWorkerFunction",
            {
                "STATE_TABLE",
                "QUEUE_URL",
                "PAYLOAD_BUCKET",
                "KANTATA_BASE_URL",
                "KANTATA_TOKEN_SECRET_NAME",
                "ROUTING_CONFIG_PARAMETER",
                "IDEMPOTENCY_TTL_SECONDS",
                "GITLAB_STATUS_LABEL_PREFIX",
            },
        ),
        (
            "CatalogSyncFunction",
            {
                "KANTATA_BASE_URL",
                "KANTATA_TOKEN_SECRET_NAME",
                "CATALOG_CONFIG_PARAMETER",
                "CATALOG_STATE_PARAMETER",
            },
        ),
        (
            "DeliveryRecoveryFunction",
            {"STATE_TABLE", "GITHUB_TOKEN_SECRET_NAME", "GITHUB_RECOVERY_HOOKS", "GITHUB_API_URL"},
        ),
        (
            "JiraReconcileFunction",
            {
                "STATE_TABLE",
                "QUEUE_URL",
                "JIRA_BASE_URL",
                "JIRA_CREDENTIALS_SECRET_NAME",
                "ROUTING_CONFIG_PARAMETER",
            },
        ),
    ],
)
def test_functions_get_the_agreed_environment_variables(template, name, expected):
    env = template["Resources"][name]["Properties"]["Environment"]["Variables"]
    assert expected <= set(env)


def test_receiver_is_routed_from_post_webhooks_tracker(template):
    events = template["Resources"]["ReceiverFunction"]["Properties"]["Events"]
    (event,) = events.values()
    assert event["Type"] == "HttpApi"
    assert event["Properties"]["Method"] == "POST"
    assert event["Properties"]["Path"] == "/webhooks/{tracker}"
    assert event["Properties"]["ApiId"] == {"Ref": "WebhookApi"}


def test_http_api_logs_access_and_throttles_by_default(template):
    api = template["Resources"]["WebhookApi"]["Properties"]
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    # The access log never records headers (signatures) or bodies.
    assert "header" not in api["AccessLogSettings"]["Format"].lower()
    throttling = api["DefaultRouteSettings"]
    assert _parameter_default(template, throttling["ThrottlingRateLimit"])["Default"] > 0
    assert _parameter_default(template, throttling["ThrottlingBurstLimit"])["Default"] > 0


def test_catalog_sync_schedule_is_disabled_by_default(template):
    events = template["Resources"]["CatalogSyncFunction"]["Properties"]["Events"]
    (schedule,) = [e for e in events.values() if e["Type"] == "Schedule"]
    state = schedule["Properties"]["State"]
    assert state == {"Fn::If": ["CatalogScheduleOn", "ENABLED", "DISABLED"]}
    assert template["Conditions"]["CatalogScheduleOn"] == {
        "Fn::Equals": [{"Ref": "CatalogSyncScheduleEnabled"}, "true"]
    }
    assert template["Parameters"]["CatalogSyncScheduleEnabled"]["Default"] == "false"


def test_catalog_sync_keeps_its_pins_in_a_stack_owned_string_parameter_that_starts_empty(template):
    # Given the catalog sync's environment and the parameter it names
    from kantata_bridge.catalog.pins import CatalogPins

    env = template["Resources"]["CatalogSyncFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CATALOG_STATE_PARAMETER"] == {"Ref": "CatalogState"}
    state = template["Resources"]["CatalogState"]
    # Then it is a plain String parameter (the job writes it with PutParameter Type=String, Overwrite=True)
    assert state["Type"] == "AWS::SSM::Parameter"
    assert state["Properties"]["Type"] == "String"
    assert "Condition" not in state
    # And its first value reads as "no pins yet", not as an unreadable state the run would warn about
    assert CatalogPins.from_json(state["Properties"]["Value"]) == CatalogPins()


def _parameter_arn(name: Any) -> dict[str, Any]:
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{name}}}"
    }


def test_catalog_sync_may_read_and_write_its_pins_parameter_and_nothing_else_in_ssm(template):
    # Given every inline statement of every function that names an SSM action
    ssm = [
        (name, statement)
        for name, statement in _inline_statements(template)
        if any(str(a).startswith("ssm:") for a in statement["Action"])
    ]
    writers = [(n, s) for n, s in ssm if "ssm:PutParameter" in s["Action"]]
    # Then only the catalog sync writes, only GetParameter/PutParameter, and only on its pins parameter
    assert len(writers) == 1
    name, statement = writers[0]
    assert name == "CatalogSyncFunction"
    assert sorted(statement["Action"]) == ["ssm:GetParameter", "ssm:PutParameter"]
    assert statement["Resource"] == _parameter_arn("CatalogState")
    # And every other SSM grant is a read of one named parameter
    for name, statement in ssm:
        if statement is not writers[0][1]:
            assert statement["Action"] == ["ssm:GetParameter"], name


# ---------------------------------------------------------------- IAM


def _inline_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in FUNCTIONS:
        for policy in template["Resources"][name]["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                found.append((name, statement))
    return found


def test_inline_policies_name_their_actions_and_resources(template):
    statements = _inline_statements(template)
    assert statements
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), (name, actions)
        assert statement["Resource"] != "*", name


def test_only_the_receiver_the_worker_and_the_jira_sweep_send_to_the_queue_and_only_the_worker_may_crud_tables(
    template,
):
    def templates_used(name: str) -> set[str]:
        return {k for p in template["Resources"][name]["Properties"].get("Policies", []) for k in p}

    def queues_sent_to(name: str) -> list[object]:
        policies = template["Resources"][name]["Properties"].get("Policies", [])
        return [p["SQSSendMessagePolicy"]["QueueName"] for p in policies if "SQSSendMessagePolicy" in p]

    senders = {name for name in FUNCTIONS if "SQSSendMessagePolicy" in templates_used(name)}
    assert senders == {"ReceiverFunction", "SyncWorkerFunction", "JiraReconcileFunction"}
    assert {name for name in FUNCTIONS if "DynamoDBCrudPolicy" in templates_used(name)} == {
        "SyncWorkerFunction"
    }
    assert queues_sent_to("ReceiverFunction") == [{"Fn::GetAtt": ["EventsQueue", "QueueName"]}]
    assert "DynamoDBCrudPolicy" not in templates_used("ReceiverFunction")
    assert "DynamoDBCrudPolicy" in templates_used("SyncWorkerFunction")
    # The worker sends only deferred deliveries, back to the events queue (never to the DLQ)
    assert queues_sent_to("SyncWorkerFunction") == [{"Fn::GetAtt": ["EventsQueue", "QueueName"]}]
    assert templates_used("CatalogSyncFunction") <= {"AWSSecretsManagerGetSecretValuePolicy", "Statement"}


# ---------------------------------------------------------------- observability and outputs


def test_alarms_cover_dlq_worker_errors_api_5xx_and_message_age(template):
    alarms = _resources(template, "AWS::CloudWatch::Alarm").values()
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms}
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    } <= watched
    assert _resources(template, "AWS::CloudWatch::Dashboard")


CODE_DIRS = [ROOT / "layers" / "bridge" / "kantata_bridge", ROOT / "functions"]


def _code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in CODE_DIRS for p in sorted(d.rglob("*.py")))


def _emitted_metric_names() -> set[str]:
    """The metric names the bridge's code passes to Powertools' add_metric (f-strings expanded)."""
    from kantata_bridge.worker.outcomes import OutcomeKind

    code = _code()
    names = set(re.findall(r'add_metric\(\s*name="(\w+)"', code))
    if "add_metric(name=failed_metric" in code:  # observability.run_scheduled_job, one name per scheduled job
        names |= set(re.findall(r'failed_metric="(\w+)"', code))
    if 'name=f"Deliveries{outcome.kind.value.capitalize()}"' in code:
        names |= {f"Deliveries{kind.value.capitalize()}" for kind in OutcomeKind}
    assert names, "no add_metric call found; has the metrics API changed?"
    return names


def _tracker_metric_names() -> set[str]:
    """Metric names emitted by the modules that add the ``tracker`` dimension (the receiver's)."""
    names: set[str] = set()
    for d in CODE_DIRS:
        for path in sorted(d.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if re.search(r'add_dimension\(\s*name="tracker"', text):
                names |= set(re.findall(r'add_metric\(\s*name="(\w+)"', text))
    return names


def test_alarms_on_the_bridges_own_metrics_watch_names_and_dimensions_the_code_emits(template):
    # Given the namespace and service the functions' Powertools Metrics use, and the names the code emits
    from kantata_bridge.trackers.registry import TRACKERS

    env = template["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]
    emitted = _emitted_metric_names()
    per_tracker = _tracker_metric_names()
    assert "Received" in per_tracker
    alarms = {
        name: a["Properties"]
        for name, a in _resources(template, "AWS::CloudWatch::Alarm").items()
        if a["Properties"]["Namespace"] == namespace
    }
    # Then parked deliveries, failed catalog, recovery and reconciliation runs (no AWS metric shows any of them)
    # raise an alarm
    assert {a["MetricName"] for a in alarms.values()} >= {
        "DeliveriesParked",
        "CatalogRunFailed",
        "RecoveryRunFailed",
        "ReconcileRunFailed",
    }
    for name, alarm in alarms.items():
        # And each watches a metric that exists, with the one dimension Powertools adds (service), or with
        # service + tracker (a known tracker) for a metric the receiver emits per tracker
        assert alarm["MetricName"] in emitted, name
        dimensions = alarm["Dimensions"]
        assert dimensions[0] == {"Name": "service", "Value": service}, name
        if len(dimensions) == 1:
            continue
        assert alarm["MetricName"] in per_tracker, name
        assert [d["Name"] for d in dimensions] == ["service", "tracker"], name
        assert dimensions[1]["Value"] in TRACKERS, name


SILENCE_ALARMS = [
    ("github", "GithubSilenceAlarmMinutes"),
    ("jira", "JiraSilenceAlarmMinutes"),
    ("gitlab", "GitlabSilenceAlarmMinutes"),
    ("linear", "LinearSilenceAlarmMinutes"),
]


def test_every_tracker_the_receiver_serves_has_a_silence_alarm():
    from kantata_bridge.trackers.registry import TRACKERS

    assert sorted(tracker for tracker, _ in SILENCE_ALARMS) == sorted(TRACKERS)


@pytest.mark.parametrize(("tracker", "parameter"), SILENCE_ALARMS)
def test_one_silence_alarm_per_tracker_fires_when_nothing_was_received_for_the_window(
    template, tracker, parameter
):
    # Given the tracker's silence alarm
    (name,) = [
        n
        for n, a in _resources(template, "AWS::CloudWatch::Alarm").items()
        if a["Properties"]["MetricName"] == "Received"
        and {"Name": "tracker", "Value": tracker} in a["Properties"]["Dimensions"]
    ]
    alarm = template["Resources"][name]
    props = alarm["Properties"]
    # Then it exists only when its window parameter is set (empty by default: off)
    param = template["Parameters"][parameter]
    assert param["Default"] == ""
    assert template["Conditions"][alarm["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]
    }
    # And it fires when no minute of the window saw a delivery: no datapoint at all is breaching
    assert props["TreatMissingData"] == "breaching"
    assert (props["Statistic"], props["Period"]) == ("Sum", 60)
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == {"Ref": parameter}
    assert (props["ComparisonOperator"], props["Threshold"]) == ("LessThanThreshold", 1)
    # And the window the parameter allows fits CloudWatch's one-day limit on period x evaluation periods
    pattern = re.compile(param["AllowedPattern"])
    for good in ("1", "60", "1440", ""):
        assert pattern.fullmatch(good), good
    for bad in ("0", "1441", "abc", "-5", "60m"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize(
    ("function", "enabled", "condition", "settings"),
    [
        ("DeliveryRecoveryFunction", "GithubRecoveryEnabled", "GithubRecoveryOn", "recovery"),
        ("JiraReconcileFunction", "JiraReconcileEnabled", "JiraReconcileOn", "reconcile"),
    ],
)
def test_recovery_and_reconciliation_are_off_by_default_and_all_of_their_resources_go_with_them(
    template, function, enabled, condition, settings
):
    # Given the switch parameter
    assert template["Parameters"][enabled]["Default"] == "false"
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": enabled}, "true"]}
    fn = template["Resources"][function]
    assert fn["Condition"] == condition
    # Then everything the function needs exists only with it: its log group, secret and failure alarm
    env = fn["Properties"]["Environment"]["Variables"]
    secret = next(v["Ref"] for k, v in env.items() if k.endswith("_SECRET_NAME"))
    log_group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert template["Resources"][secret]["Condition"] == condition
    assert template["Resources"][log_group]["Condition"] == condition
    alarms = [
        a for a in _resources(template, "AWS::CloudWatch::Alarm").values() if a.get("Condition") == condition
    ]
    assert len(alarms) == 1
    # And once on, it runs on a schedule that is a parameter
    (schedule,) = [e for e in fn["Properties"]["Events"].values() if e["Type"] == "Schedule"]
    assert schedule["Properties"]["State"] == "ENABLED"
    assert _parameter_default(template, schedule["Properties"]["Schedule"])["Default"].startswith("rate(")
    # And its environment is enough for its settings (every variable they require is set)
    dummy = {
        k: "https://example.test" if "URL" in k else "repos/a/b/hooks/1" if "HOOKS" in k else "x" for k in env
    }
    if settings == "recovery":
        from kantata_bridge.recovery.github import RecoverySettings

        RecoverySettings.from_env(dummy)
    else:
        from kantata_bridge.reconcile.jira import ReconcileSettings

        ReconcileSettings.from_env(dummy)


@pytest.mark.parametrize(
    ("rule", "enabled", "required"),
    [
        ("GithubRecoveryNeedsHooks", "GithubRecoveryEnabled", "GithubRecoveryHooks"),
        ("JiraReconcileNeedsSite", "JiraReconcileEnabled", "JiraSiteUrl"),
    ],
)
def test_switching_a_sweep_on_without_its_target_fails_the_deploy(template, rule, enabled, required):
    body = template["Rules"][rule]
    assert body["RuleCondition"] == {"Fn::Equals": [{"Ref": enabled}, "true"]}
    (assertion,) = body["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": required}, ""]}]}


def test_the_hooks_parameter_accepts_what_the_recovery_parses(template):
    from kantata_bridge.recovery.github import parse_hooks

    pattern = re.compile(template["Parameters"]["GithubRecoveryHooks"]["AllowedPattern"])
    for good in ("repos/acme/webapp/hooks/123", "repos/acme/web.app/hooks/1, orgs/acme/hooks/2"):
        assert pattern.fullmatch(good), good
        assert parse_hooks(good)
    for bad in ("acme/webapp", "repos/acme/webapp/hooks/x", "https://api.github.com/repos/a/b/hooks/1"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize("function", ["DeliveryRecoveryFunction", "JiraReconcileFunction"])
def test_the_sweeps_reach_the_state_table_item_by_item_only(template, function):
    statements = [s for n, s in _inline_statements(template) if n == function]
    (dynamodb,) = [s for s in statements if any(str(a).startswith("dynamodb:") for a in s["Action"])]
    assert sorted(dynamodb["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert dynamodb["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}


def test_dashboard_searches_every_dimension_set_the_bridges_metrics_carry(template):
    # Given the dimensions the code adds on top of Powertools' service dimension (the receiver adds tracker)
    extra = set(re.findall(r'add_dimension\(\s*name="(\w+)"', _code()))
    assert "tracker" in extra
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    # Then a SEARCH covers each exact set (a SEARCH schema matches only metrics with exactly those dimensions)
    for dimensions in [["service"], *(["service", d] for d in sorted(extra))]:
        assert f"SEARCH('{{{namespace},{','.join(dimensions)}}}" in body, dimensions


@pytest.mark.parametrize("tracker", ["github", "jira", "gitlab", "linear"])
def test_outputs_give_a_webhook_url_per_tracker(template, tracker):
    urls = [
        o["Value"].get("Fn::Sub", "") for o in template["Outputs"].values() if isinstance(o["Value"], dict)
    ]
    (url,) = [u for u in urls if isinstance(u, str) and u.endswith(f"/webhooks/{tracker}")]
    assert url.startswith("https://${WebhookApi}.execute-api.")


def test_redrive_can_find_its_queues_and_table_in_the_outputs(template):
    assert {"QueueUrl", "DeadLetterQueueUrl", "StateTableName"} <= set(template["Outputs"])


def test_outputs_name_every_parameter_an_operator_edits_or_reads(template):
    outputs = template["Outputs"]
    assert outputs["CatalogStateParameter"]["Value"] == {"Ref": "CatalogState"}
    assert {"RoutingConfigParameter", "CatalogConfigParameter", "CatalogSyncFunctionName"} <= set(outputs)


# ---------------------------------------------------------------- scan suppressions


def test_every_checkov_suppression_says_why(template):
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
        assert len(skip.get("comment", "")) >= 40, f"{name}: {skip['id']} needs a written reason"


def test_tracker_parameters_default_to_what_the_code_defaults_to(template):
    # The template's defaults and the code's must agree, or a deployment behaves unlike the docs.
    from kantata_bridge.receiver.settings import DEFAULT_ENABLED_TRACKERS
    from kantata_bridge.trackers.gitlab import GitLabAdapter
    from kantata_bridge.trackers.gitlab_events import DEFAULT_STATUS_LABEL_PREFIX
    from kantata_bridge.trackers.linear import LinearAdapter

    params = template["Parameters"]
    assert params["EnabledTrackers"]["Default"] == ",".join(DEFAULT_ENABLED_TRACKERS)
    assert params["GitLabAuthMode"]["Default"] == GitLabAdapter.default_auth_mode
    assert params["GitLabSignatureToleranceSeconds"]["Default"] == GitLabAdapter.default_signature_tolerance
    assert params["LinearSignatureToleranceSeconds"]["Default"] == LinearAdapter.default_signature_tolerance
    assert params["GitLabStatusLabelPrefix"]["Default"] == DEFAULT_STATUS_LABEL_PREFIX
    receiver = template["Resources"]["ReceiverFunction"]["Properties"]["Environment"]["Variables"]
    assert receiver["ENABLED_TRACKERS"] == {"Ref": "EnabledTrackers"}
    worker = template["Resources"]["SyncWorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert worker["GITLAB_STATUS_LABEL_PREFIX"] == {"Ref": "GitLabStatusLabelPrefix"}
