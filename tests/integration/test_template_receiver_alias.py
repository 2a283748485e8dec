"""The receiver's cold-start options (SnapStart, provisioned concurrency) are wired as Lambda needs them.

SnapStart snapshots a published version and provisioned concurrency is configured on an alias or version, so the
HTTP API must invoke the receiver through an alias that follows every deploy. These tests read the template as
CloudFormation receives it after the SAM transform: the template is translated here with the SAM translator
(samtranslator, the library the AWS::Serverless transform runs), after replacing local code paths by S3
locations as `sam package` does.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from cfnlint.decode import decode as cfnlint_decode
from cfnlint.template import Template
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
ALIAS = "ReceiverFunctionAliaslive"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    # JSON round trip: plain dicts and strings, as the transform receives them
    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE_PATH))))
    return loaded


def packaged(template: dict[str, Any], code: str = "receiver-1", layer: str = "bridge-1") -> dict[str, Any]:
    """``template`` with S3 locations for code and layer, as `sam package` leaves it (one key per artefact)."""
    result = copy.deepcopy(template)
    for name, resource in result["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://artifacts/{code if name == 'ReceiverFunction' else name}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://artifacts/{layer}.zip"
    return result


def translate(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``template`` with ``parameters``."""
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name="eu-west-1"),
    )
    result: dict[str, Any] = translator.translate(
        sam_template=copy.deepcopy(template),
        parameter_values=dict(parameters or {}),
        get_managed_policy_map=lambda: {},
    )
    return result


def receiver_version(translated: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (version,) = [
        (name, r)
        for name, r in translated["Resources"].items()
        if r["Type"] == "AWS::Lambda::Version"
        and r["Properties"]["FunctionName"] == {"Ref": "ReceiverFunction"}
    ]
    return version


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(packaged(template))


# ---------------------------------------------------------------- the alias


def test_the_http_api_invokes_the_receiver_through_its_live_alias(translated):
    resources = translated["Resources"]
    # Given the alias SAM made for the receiver, pointing at the version this deploy published
    alias = resources[ALIAS]
    version_name, _ = receiver_version(translated)
    assert alias["Type"] == "AWS::Lambda::Alias"
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_name, "Version"]}
    # Then the API's integration for POST /webhooks/{tracker} invokes the alias (Ref of an alias is its ARN)
    body = resources["WebhookApi"]["Properties"]["Body"]
    integration = body["paths"]["/webhooks/{tracker}"]["post"]["x-amazon-apigateway-integration"]
    assert integration["uri"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        f"${{{ALIAS}}}/invocations"
    }
    # And API Gateway may invoke the alias only, never the unpublished function
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    receiver_permissions = [
        p for p in permissions if p["FunctionName"] in ({"Ref": ALIAS}, {"Ref": "ReceiverFunction"})
    ]
    assert [p["FunctionName"] for p in receiver_permissions] == [{"Ref": ALIAS}]
    assert receiver_permissions[0]["Principal"] == "apigateway.amazonaws.com"


def test_superseded_receiver_versions_are_deleted(translated):
    # A retained version would keep a cached SnapStart snapshot, which is charged, for ever
    _, version = receiver_version(translated)
    assert version["DeletionPolicy"] == "Delete"


# ---------------------------------------------------------------- SnapStart and provisioned concurrency


def test_snapstart_is_off_by_default_and_applies_to_published_versions_when_on(template, translated):
    param = template["Parameters"]["ReceiverSnapStart"]
    assert (param["Default"], param["AllowedValues"]) == ("false", ["true", "false"])
    assert template["Conditions"]["ReceiverSnapStartOn"] == {
        "Fn::Equals": [{"Ref": "ReceiverSnapStart"}, "true"]
    }
    functions = {
        n: r["Properties"] for n, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    }
    # SnapStart applies to published versions only ($LATEST never has a snapshot); None switches it off
    assert functions["ReceiverFunction"]["SnapStart"] == {
        "ApplyOn": {"Fn::If": ["ReceiverSnapStartOn", "PublishedVersions", "None"]}
    }
    assert [n for n, p in functions.items() if "SnapStart" in p] == ["ReceiverFunction"]


def test_provisioned_concurrency_is_off_at_zero_and_configured_on_the_alias_otherwise(template, translated):
    param = template["Parameters"]["ReceiverProvisionedConcurrency"]
    assert param["Default"] == "0"
    assert template["Conditions"]["ReceiverProvisionedConcurrencyOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReceiverProvisionedConcurrency"}, "0"]}]
    }
    # Then with 0 the alias has no provisioned concurrency at all (Lambda refuses 0 executions)
    assert translated["Resources"][ALIAS]["Properties"]["ProvisionedConcurrencyConfig"] == {
        "Fn::If": [
            "ReceiverProvisionedConcurrencyOn",
            {"ProvisionedConcurrentExecutions": {"Ref": "ReceiverProvisionedConcurrency"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    _, version = receiver_version(translated)
    assert "ProvisionedConcurrencyConfig" not in version["Properties"]
    # And the pattern admits one spelling of each number, so "0" is the only way to say "off"
    pattern = re.compile(param["AllowedPattern"])
    for good in ("0", "1", "2", "999"):
        assert pattern.fullmatch(good), good
    for bad in ("", "00", "01", "-1", "1000", "1.5", "two", " 1"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize(
    ("snapstart", "provisioned", "deployable"),
    [
        ("false", "0", True),
        ("true", "0", True),
        ("false", "2", True),
        ("true", "2", False),
        ("true", "999", False),
    ],
)
def test_snapstart_and_provisioned_concurrency_cannot_be_deployed_together(
    snapstart, provisioned, deployable
):
    # Given the template's Rules and Conditions, evaluated by cfn-lint's solver for these parameter values
    def satisfiable(path_or_template: Any) -> bool:
        if isinstance(path_or_template, Path):
            decoded, matches = cfnlint_decode(str(path_or_template))
            assert not matches
        else:
            decoded = path_or_template
        conditions = Template(str(TEMPLATE_PATH), decoded, ["eu-west-1"]).conditions
        return bool(
            conditions.satisfiable(
                {
                    "ReceiverSnapStartOn": snapstart == "true",
                    "ReceiverProvisionedConcurrencyOn": provisioned != "0",
                },
                {"ReceiverSnapStart": snapstart, "ReceiverProvisionedConcurrency": provisioned},
            )
        )

    # Then CloudFormation accepts the combination unless both are on (Lambda does not support both)
    assert satisfiable(TEMPLATE_PATH) is deployable
    # And it is the template's rule that refuses it
    decoded, _ = cfnlint_decode(str(TEMPLATE_PATH))
    rule = decoded["Rules"].pop("ReceiverSnapStartExcludesProvisionedConcurrency")
    assert satisfiable(decoded) is True
    description = rule["Assertions"][0]["AssertDescription"]
    assert "ReceiverSnapStart" in description
    assert "ReceiverProvisionedConcurrency" in description


# ---------------------------------------------------------------- every deploy reaches the alias


def test_a_change_of_the_receivers_code_or_of_the_bridge_layer_publishes_a_new_version(template):
    # Given the version SAM publishes for a build
    base, _ = receiver_version(translate(packaged(template)))
    assert receiver_version(translate(packaged(template)))[0] == base  # the same build, the same version
    # When only the receiver's code, or only the layer (where the receiver's logic lives), changes
    code_only, _ = receiver_version(translate(packaged(template, code="receiver-2")))
    layer_only, _ = receiver_version(translate(packaged(template, layer="bridge-2")))
    # Then each publishes a new version, so the alias moves to the new code
    assert len({base, code_only, layer_only}) == 3
    # And for the layer it is BridgeLayer's PublishLambdaVersion that does it
    without = copy.deepcopy(template)
    del without["Resources"]["BridgeLayer"]["Properties"]["PublishLambdaVersion"]
    assert (
        receiver_version(translate(packaged(without)))[0]
        == receiver_version(translate(packaged(without, layer="bridge-2")))[0]
    )


def _parameters_in(value: Any, template: dict[str, Any]) -> set[str]:
    """Template parameters ``value`` depends on: Refs, ${...} in Fn::Sub, and those of the Conditions it uses."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and inner in template["Parameters"]:
                found.add(inner)
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= {n for n in re.findall(r"\$\{([\w:]+)\}", text) if n in template["Parameters"]}
            elif key in ("Fn::If", "Condition") and isinstance(inner, list | str):
                name = inner[0] if isinstance(inner, list) else inner
                found |= _parameters_in(template["Conditions"][name], template)
            found |= _parameters_in(inner, template)
    elif isinstance(value, list):
        for inner in value:
            found |= _parameters_in(inner, template)
    return found


def test_a_parameter_only_change_publishes_a_new_version_through_the_version_description(
    template, translated
):
    # Given a deploy that changes only a parameter of the receiver's configuration (a tracker switched on)
    base, _ = receiver_version(translated)
    changed, version = receiver_version(
        translate(packaged(template), {"EnabledTrackers": "github,jira,gitlab,linear"})
    )
    # Then SAM's hash does not see it (it hashes parameter references, not values): same version resource ...
    assert changed == base
    # ... so the version's description carries the value of every parameter the function's configuration
    # depends on. CloudFormation replaces, that is publishes anew, a version whose description changes.
    function = translated["Resources"]["ReceiverFunction"]["Properties"]
    configuration = _parameters_in(function, template)
    assert {"EnabledTrackers", "LogLevel", "TracingMode", "ReceiverSnapStart"} <= configuration
    description = version["Properties"]["Description"]
    assert set(description) == {"Fn::Sub"}
    assert _parameters_in(description, template) == configuration
    # And the description fits Lambda's 256 characters with the longest values the parameters allow in practice
    longest = {
        "EnabledTrackers": "github,jira,gitlab,linear",
        "GitLabAuthMode": "shared-token",
        "GitLabSignatureToleranceSeconds": "86400",
        "LinearSignatureToleranceSeconds": "86400",
        "LogLevel": "WARNING",
        "TracingMode": "PassThrough",
        "ReceiverSnapStart": "false",
    }
    assert len(re.sub(r"\$\{(\w+)\}", lambda m: longest[m.group(1)], description["Fn::Sub"])) <= 256
