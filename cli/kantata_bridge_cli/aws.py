"""The AWS connection of the operator commands (explain, redrive): one set of flags, one session, and every
AWS failure a person can cause (no region, no credentials, an unknown profile, an endpoint that does not
answer, a table or queue that does not exist, a refused call) turned into one line that says what to do.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Final

from kantata_bridge_cli.console import CliError
from kantata_bridge_cli.kantata_options import url_problem

# Fail fast on a wrong endpoint: botocore's defaults wait 60 s per connection attempt and retry four times.
_CONNECT_TIMEOUT: Final = 5
_READ_TIMEOUT: Final = 30
_ATTEMPTS: Final = 3
_NOT_FOUND: Final = frozenset(
    {
        "ResourceNotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ParameterNotFound",
    }
)
_DENIED: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"}
)
_EXPIRED: Final = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


# botocore's own rule for a region name (a bad one fails later, deep in the signer, with a traceback)
_REGION: Final = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


def endpoint_url(text: str) -> str:
    """``--endpoint-url``: an http(s) URL with a host and a valid port (botocore raises on anything else)."""
    problem = url_problem(text, "--endpoint-url", "http://127.0.0.1:5000")
    if problem:
        raise argparse.ArgumentTypeError(problem.removeprefix("--endpoint-url "))
    return text


def region_name(text: str) -> str:
    """``--region``: a region's name, such as us-east-1 (an empty or odd one fails deep in botocore)."""
    if not _REGION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be an AWS region such as us-east-1; got {text!r}")
    return text


def add_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """``--endpoint-url``, ``--region``, ``--profile``."""
    group.add_argument(
        "--endpoint-url", type=endpoint_url, help="AWS endpoint, e.g. the local stack's moto server"
    )
    group.add_argument("--region", type=region_name, help="AWS region (default: your AWS configuration)")
    group.add_argument("--profile", help="AWS profile (default: your AWS configuration)")


def session(args: argparse.Namespace) -> Any:
    """A boto3 session from ``--profile`` / ``--region``. With ``--endpoint-url`` and no credentials
    configured, moto's dummy ones (a local endpoint accepts any). Raises CliError for an unknown profile."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        found = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        if args.endpoint_url and found.get_credentials() is None:
            return boto3.session.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
                region_name=args.region or found.region_name or "us-east-1",
            )
    except BotoCoreError as exc:
        raise describe(exc, args) from None
    return found


def client(aws: Any, service: str, args: argparse.Namespace) -> Any:
    """A client for ``service`` at ``--endpoint-url`` (if given) with short timeouts and few retries."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
    )
    try:
        return aws.client(service, endpoint_url=args.endpoint_url, config=config)
    except BotoCoreError as exc:
        raise describe(exc, args) from None
    except ValueError as exc:  # botocore's own check of the endpoint (a value from the environment, say)
        raise CliError(f"AWS endpoint not usable: {exc}") from None


def describe(
    exc: Exception, args: argparse.Namespace, *, what: str | None = None, region: str | None = None
) -> CliError:
    """One line (and a hint) for an AWS failure, as a CliError with exit code 2.

    ``what`` names the resource the call was about (e.g. "state table 'x'"), for "not found" answers;
    ``region`` the region in use when it did not come from ``--region``.
    """
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    where = _where(args, region)
    if isinstance(exc, NoRegionError):
        return CliError(
            "no AWS region is configured",
            hint="Pass --region (e.g. --region us-east-1) or set AWS_REGION.",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CliError(
            "no AWS credentials found",
            hint="Configure them (aws configure, AWS_PROFILE, environment variables) or pass --profile.",
        )
    if isinstance(exc, ProfileNotFound):
        return CliError(f"AWS profile {args.profile!r} is not in your AWS configuration")
    if isinstance(exc, EndpointConnectionError):
        return CliError(
            f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}",
            hint="Check --endpoint-url and --region (is the local stack still running?).",
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        if code in _NOT_FOUND:
            return CliError(
                f"{what or 'the resource'} does not exist{where}",
                hint="Check the name and --region (and --endpoint-url for the local stack).",
            )
        if code in _DENIED:
            return CliError(f"AWS refused access{where}: {code}: {message}")
        if code in _EXPIRED:
            return CliError("your AWS credentials have expired", hint="Refresh them (e.g. aws sso login).")
        return CliError(f"AWS refused a call{where}: {code}: {message}")
    return CliError(f"AWS call failed{where}: {exc}")


def _where(args: argparse.Namespace, region: str | None) -> str:
    parts = []
    region = getattr(args, "region", None) or region
    if region:
        parts.append(f"region {region}")
    if getattr(args, "endpoint_url", None):
        parts.append(f"endpoint {args.endpoint_url}")
    return f" ({', '.join(parts)})" if parts else ""
