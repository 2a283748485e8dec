"""The local stack's AWS resources, created on a moto server with the names and settings of template.yaml.

The table keys, GSI, TTL attribute, encryption and point-in-time recovery, the queues' retention, encryption
and redrive, and the bucket's encryption, public-access block, ownership and lifecycle rules are read from
the template itself, so the local stack cannot drift from what `sam deploy` creates. Only the visibility
timeout (a failed delivery reappears in seconds, not minutes) and, when asked, maxReceiveCount are local.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class TemplateError(RuntimeError):
    """template.yaml is missing or lacks a resource the local stack mirrors."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...)."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """template.yaml as plain data (short tags become their long form). Raises TemplateError if unreadable."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return doc


@dataclass(frozen=True, slots=True)
class LocalResources:
    """What the local stack created, as the functions' environment needs it."""

    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    state_table: str
    payload_bucket: str
    webhook_secrets_name: str
    kantata_token_secret_name: str
    max_receive_count: int
    visibility_timeout: int


class TemplateMirror:
    """Reads resource properties from the template, resolving parameter references to their defaults."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self._template = template

    def properties(self, logical_id: str) -> dict[str, Any]:
        try:
            return dict(self._template["Resources"][logical_id]["Properties"])
        except KeyError:
            raise TemplateError(f"template.yaml has no resource {logical_id} with Properties") from None

    def resolve(self, value: Any) -> Any:
        """A literal as is; ``{"Ref": parameter}`` as the parameter's default."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            param = self._template.get("Parameters", {}).get(value["Ref"])
            if param is None or "Default" not in param:
                raise TemplateError(f"cannot resolve {value!r} locally (not a parameter with a default)")
            return param["Default"]
        return value

    def lifecycle_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        """A CloudFormation S3 lifecycle rule in the S3 API's shape (the forms the template uses)."""
        known = {"Id", "Status", "ExpirationInDays", "AbortIncompleteMultipartUpload", "Prefix"}
        if set(rule) - known:
            raise TemplateError(f"lifecycle rule keys {sorted(set(rule) - known)} are not mirrored locally")
        api: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "Id" in rule:
            api["ID"] = rule["Id"]
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(self.resolve(rule["ExpirationInDays"]))}
        if "AbortIncompleteMultipartUpload" in rule:
            days = self.resolve(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
        return api


def create_resources(
    session: Any,
    *,
    prefix: str,
    webhook_secrets: Mapping[str, list[str]],
    kantata_token: str,
    visibility_timeout: int = 2,
    max_receive_count: int | None = None,
    template: Mapping[str, Any] | None = None,
) -> LocalResources:
    """Create queues, tables, bucket and secrets through ``session`` (a boto3 Session aimed at moto).

    ``max_receive_count`` None takes the template's default. Raises TemplateError when the template lacks a
    mirrored resource, and botocore's ClientError when moto refuses a call.
    """
    mirror = TemplateMirror(template if template is not None else load_template())
    sqs = session.client("sqs")
    dynamodb = session.client("dynamodb")
    s3 = session.client("s3")
    secrets = session.client("secretsmanager")

    dlq_props = mirror.properties("DeadLetterQueue")
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-dlq",
        Attributes={
            "MessageRetentionPeriod": str(mirror.resolve(dlq_props["MessageRetentionPeriod"])),
            **_queue_encryption(dlq_props),
        },
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)

    queue_props = mirror.properties("EventsQueue")
    redrive = queue_props["RedrivePolicy"]
    receive_count = int(max_receive_count or mirror.resolve(redrive["maxReceiveCount"]))
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-events",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(mirror.resolve(queue_props["MessageRetentionPeriod"])),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": receive_count}),
            **_queue_encryption(queue_props),
        },
    )["QueueUrl"]

    tables = {}
    for logical_id, suffix in (("StateTable", "state"),):
        props = mirror.properties(logical_id)
        name = f"{prefix}-{suffix}"
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props["BillingMode"],
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("SSESpecification", {}).get("SSEEnabled"):
            kwargs["SSESpecification"] = {"Enabled": True}
        dynamodb.create_table(**kwargs)
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        ttl = props["TimeToLiveSpecification"]
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
        )
        tables[logical_id] = name

    bucket = f"{prefix}-payloads"
    s3.create_bucket(Bucket=bucket)
    bucket_props = mirror.properties("PayloadBucket")
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=bucket_props["PublicAccessBlockConfiguration"]
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in bucket_props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
        },
    )
    if "OwnershipControls" in bucket_props:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=bucket_props["OwnershipControls"])
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [mirror.lifecycle_rule(rule) for rule in bucket_props["LifecycleConfiguration"]["Rules"]]
        },
    )

    webhook_secrets_name = f"{prefix}/webhook-secrets"
    kantata_token_name = f"{prefix}/kantata-token"
    secrets.create_secret(Name=webhook_secrets_name, SecretString=json.dumps(dict(webhook_secrets)))
    secrets.create_secret(Name=kantata_token_name, SecretString=kantata_token)

    return LocalResources(
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        state_table=tables["StateTable"],
        payload_bucket=bucket,
        webhook_secrets_name=webhook_secrets_name,
        kantata_token_secret_name=kantata_token_name,
        max_receive_count=receive_count,
        visibility_timeout=visibility_timeout,
    )


def _queue_encryption(props: Mapping[str, Any]) -> dict[str, str]:
    return {"SqsManagedSseEnabled": "true"} if props.get("SqsManagedSseEnabled") else {}


def _queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])
