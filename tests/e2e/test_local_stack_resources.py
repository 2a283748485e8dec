"""The local stack's AWS resources have the settings template.yaml gives the deployed ones.

The template is read with cfn-lint's decoder here (the local stack reads it with its own loader), so a
setting the local stack forgets to mirror, or mirrors wrongly, shows up as a difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from kantata_bridge_dev.resources import LocalResources, create_resources
from moto import mock_aws

pytestmark = pytest.mark.e2e

TEMPLATE = dict(cfn_yaml.load(str(Path(__file__).resolve().parents[2] / "template.yaml")))


def props(logical_id: str) -> dict[str, Any]:
    return dict(TEMPLATE["Resources"][logical_id]["Properties"])


def default(ref: dict[str, str]) -> Any:
    return TEMPLATE["Parameters"][ref["Ref"]]["Default"]


@pytest.fixture
def created(monkeypatch) -> tuple[Any, LocalResources]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(
            session, prefix="t", webhook_secrets={"github": ["s"]}, kantata_token="tok", visibility_timeout=2
        )
        yield session, resources


@pytest.mark.parametrize("logical_id", ["StateTable"])
def test_local_tables_have_the_templates_keys_ttl_encryption_and_point_in_time_recovery(created, logical_id):
    session, res = created
    name = res.state_table
    ddb = session.client("dynamodb")
    table = ddb.describe_table(TableName=name)["Table"]
    want = props(logical_id)
    assert table["KeySchema"] == want["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == want["BillingMode"]
    assert [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])] == [
        i["IndexName"] for i in want.get("GlobalSecondaryIndexes", [])
    ]
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == want["TimeToLiveSpecification"]["AttributeName"]
    backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert table["SSEDescription"]["Status"] == "ENABLED"


def test_local_queues_have_the_templates_retention_encryption_and_redrive(created):
    session, res = created
    sqs = session.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=res.queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=res.dead_letter_queue_url, AttributeNames=["All"])["Attributes"]
    assert int(queue["MessageRetentionPeriod"]) == props("EventsQueue")["MessageRetentionPeriod"]
    assert int(dlq["MessageRetentionPeriod"]) == props("DeadLetterQueue")["MessageRetentionPeriod"]
    assert queue["SqsManagedSseEnabled"] == "true"
    assert dlq["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == res.dead_letter_queue_arn
    assert int(redrive["maxReceiveCount"]) == default(
        props("EventsQueue")["RedrivePolicy"]["maxReceiveCount"]
    )


def test_local_bucket_is_encrypted_private_and_expires_payloads_like_the_template(created):
    session, res = created
    s3 = session.client("s3")
    want = props("PayloadBucket")
    block = s3.get_public_access_block(Bucket=res.payload_bucket)["PublicAccessBlockConfiguration"]
    assert block == want["PublicAccessBlockConfiguration"]
    (rule,) = s3.get_bucket_encryption(Bucket=res.payload_bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    (want_rule,) = want["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ApplyServerSideEncryptionByDefault"] == want_rule["ServerSideEncryptionByDefault"]
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=res.payload_bucket)["Rules"]
    (want_lifecycle,) = want["LifecycleConfiguration"]["Rules"]
    assert lifecycle["Status"] == "Enabled"
    assert lifecycle["Expiration"]["Days"] == default(want_lifecycle["ExpirationInDays"])
    assert lifecycle["AbortIncompleteMultipartUpload"] == want_lifecycle["AbortIncompleteMultipartUpload"]
