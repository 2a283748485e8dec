"""Receiver settings from the environment: defaults, per-tracker auth modes, clear errors."""

from __future__ import annotations

import pytest
from kantata_bridge.envelope import INLINE_BODY_LIMIT
from kantata_bridge.receiver.credentials import StaticCredentials, credential_list
from kantata_bridge.receiver.errors import ConfigurationError, CredentialsUnavailableError
from kantata_bridge.receiver.settings import AuthMode, load_settings
from kantata_bridge.trackers.registry import ADAPTERS

BASE = {"QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/events", "WEBHOOK_SECRETS_NAME": "s"}


def test_defaults_enable_github_and_jira_signed_with_documented_event_sets() -> None:
    settings = load_settings(ADAPTERS, BASE)
    assert set(settings.trackers) == {"github", "jira"}
    assert settings.trackers["github"].auth_mode is AuthMode.SIGNATURE
    assert settings.trackers["github"].events == {"issues", "pull_request"}
    assert settings.trackers["jira"].events == {
        "jira:issue_created",
        "jira:issue_updated",
        "jira:issue_deleted",
    }
    assert settings.trackers["jira"].token_header == "x-bridge-token"
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.inline_body_limit == INLINE_BODY_LIMIT
    assert settings.secrets_max_age == 300
    assert settings.payload_bucket is None
    assert settings.payload_sse == "AES256"


def test_per_tracker_overrides() -> None:
    settings = load_settings(
        ADAPTERS,
        {
            **BASE,
            "ENABLED_TRACKERS": "Jira",
            "JIRA_AUTH_MODE": "Shared-Token",
            "JIRA_TOKEN_HEADER": "X-Automation-Secret",
            "JIRA_EVENTS": "*",
            "PAYLOAD_BUCKET": "bucket",
            "PAYLOAD_SSE": "aws:kms",
            "MAX_BODY_BYTES": "1000",
        },
    )
    assert list(settings.trackers) == ["jira"]
    jira = settings.trackers["jira"]
    assert (jira.auth_mode, jira.token_header, jira.events) == (
        AuthMode.SHARED_TOKEN,
        "x-automation-secret",
        None,
    )
    assert (settings.payload_bucket, settings.payload_sse, settings.inline_body_limit) == (
        "bucket",
        "aws:kms",
        1000,
    )


def test_all_unsigned_trackers_need_no_secret_name() -> None:
    env = {"QUEUE_URL": "q", "GITHUB_AUTH_MODE": "unsigned", "JIRA_AUTH_MODE": "unsigned"}
    assert load_settings(ADAPTERS, env).secrets_name is None


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"WEBHOOK_SECRETS_NAME": "s"}, "QUEUE_URL"),
        ({"QUEUE_URL": "q"}, "WEBHOOK_SECRETS_NAME"),
        ({**BASE, "GITHUB_AUTH_MODE": "maybe"}, "GITHUB_AUTH_MODE"),
        ({**BASE, "ENABLED_TRACKERS": "github,bitbucket"}, "bitbucket"),
        ({**BASE, "ENABLED_TRACKERS": "gitlab", "GITLAB_AUTH_MODE": "hmac"}, "GITLAB_AUTH_MODE"),
        (
            {**BASE, "ENABLED_TRACKERS": "linear", "LINEAR_SIGNATURE_TOLERANCE_SECONDS": "-1"},
            "LINEAR_SIGNATURE_TOLERANCE",
        ),
        (
            {**BASE, "ENABLED_TRACKERS": "linear", "LINEAR_SIGNATURE_TOLERANCE_SECONDS": "8h"},
            "LINEAR_SIGNATURE_TOLERANCE",
        ),
        ({**BASE, "MAX_BODY_BYTES": "10MB"}, "MAX_BODY_BYTES"),
        ({**BASE, "WEBHOOK_SECRETS_MAX_AGE": "-1"}, "WEBHOOK_SECRETS_MAX_AGE"),
        ({**BASE, "PAYLOAD_SSE": "rot13"}, "PAYLOAD_SSE"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        load_settings(ADAPTERS, env)


def test_secret_document_accepts_lists_and_single_strings() -> None:
    creds = StaticCredentials({"github": ["new", "old"], "jira": "one", "jira_tokens": ["t"]})
    assert creds.secrets_for("github") == ("new", "old")
    assert creds.secrets_for("jira") == ("one",)
    assert creds.tokens_for("jira") == ("t",)
    assert creds.tokens_for("github") == ()
    assert "new" not in repr(creds)


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], 42])
def test_secret_entry_of_another_shape_is_unavailable_without_showing_it(value: object) -> None:
    with pytest.raises(CredentialsUnavailableError) as err:
        credential_list({"github": value}, "github")
    assert str(value) not in str(err.value)
