"""The catalog sync as a job: settings from the environment, the request from the event, a JSON summary.

Used by the ``catalog_sync`` Lambda (scheduled by EventBridge, or invoked directly). Environment:

- ``CATALOG_CONFIG_FILE``: path of the catalog YAML/JSON bundled with the function, or
  ``CATALOG_CONFIG_PARAMETER``: the SSM parameter holding it (exactly one of the two).
- ``KANTATA_TOKEN_SECRET_NAME``: Secrets Manager secret whose value is the Kantata bearer token.
- ``KANTATA_BASE_URL``: default ``https://api.mavenlink.com/api/v1``.
- ``CATALOG_SCHEDULE_MODE`` (``plan`` | ``apply``, default ``apply``) and ``CATALOG_SCHEDULE_PRUNE``
  (default ``false``): what a scheduled run does.
- ``CATALOG_STATE_PARAMETER`` (optional): an SSM String parameter where apply keeps the pinned Kantata ids
  (pins.py) so a status renamed in Kantata is renamed back; read by plan and apply, written by apply.

The event: an EventBridge event (the schedule) or ``{}`` runs ``CATALOG_SCHEDULE_MODE``; a direct invoke
sends ``{"mode": "plan" | "apply", "prune": bool}`` (see ``parse_request``). Nothing is read at import time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kantata_bridge.catalog.apply import CatalogKantata, apply_catalog, plan_from_kantata
from kantata_bridge.catalog.config import CatalogConfig, CatalogConfigError, parse_config_text
from kantata_bridge.catalog.pins import CatalogPins, PinsError
from kantata_bridge.catalog.report import apply_summary, plan_summary
from kantata_bridge.kantata import DEFAULT_BASE_URL
from kantata_bridge.kantata.errors import KantataError

MODES: Final = ("plan", "apply")
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off", "")


class CatalogJobError(Exception):
    """The job cannot run: a setting is missing or invalid, or the config/token cannot be read.

    ``reason`` is a short code for the summary; the message never holds the token.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JobSettings:
    """The job's settings (see the module docstring)."""

    token_secret_name: str
    base_url: str = DEFAULT_BASE_URL
    config_file: str | None = None
    config_parameter: str | None = None
    schedule_mode: str = "apply"
    schedule_prune: bool = False
    state_parameter: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobSettings:
        """Read the settings. CatalogJobError names the variable that is missing or wrong."""
        env = os.environ if env is None else env
        config_file = env.get("CATALOG_CONFIG_FILE") or None
        config_parameter = env.get("CATALOG_CONFIG_PARAMETER") or None
        if (config_file is None) == (config_parameter is None):
            raise CatalogJobError(
                "settings_invalid", "set exactly one of CATALOG_CONFIG_FILE and CATALOG_CONFIG_PARAMETER"
            )
        secret = env.get("KANTATA_TOKEN_SECRET_NAME")
        if not secret:
            raise CatalogJobError("settings_invalid", "KANTATA_TOKEN_SECRET_NAME is not set")
        mode = env.get("CATALOG_SCHEDULE_MODE", "apply").strip().lower()
        if mode not in MODES:
            raise CatalogJobError(
                "settings_invalid", f"CATALOG_SCHEDULE_MODE must be plan or apply; got {mode!r}"
            )
        return cls(
            token_secret_name=secret,
            base_url=env.get("KANTATA_BASE_URL") or DEFAULT_BASE_URL,
            config_file=config_file,
            config_parameter=config_parameter,
            schedule_mode=mode,
            schedule_prune=_flag("CATALOG_SCHEDULE_PRUNE", env.get("CATALOG_SCHEDULE_PRUNE", "false")),
            state_parameter=env.get("CATALOG_STATE_PARAMETER") or None,
        )


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CatalogJobError("settings_invalid", f"{name} must be true or false; got {value!r}")


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What one run does: ``plan`` or ``apply``, with or without ``prune``; ``trigger`` says who asked."""

    mode: str
    prune: bool
    trigger: str


def parse_request(event: Any, settings: JobSettings) -> JobRequest:
    """The run asked for by ``event``.

    An EventBridge event (it has ``source`` and ``detail-type``; the schedule sends one) or an empty event
    runs the schedule's mode. A direct invoke sends ``{"mode": "plan"|"apply", "prune": bool}``: ``mode``
    is required there, and any other key is refused, so that a typo (``{"Mode": "plan"}``) or a bare
    ``{"prune": true}`` never falls back to the schedule's mode (by default an apply without prune).
    CatalogJobError (``request_invalid``) for anything else.
    """
    if event is None or (isinstance(event, Mapping) and not event):
        return JobRequest(settings.schedule_mode, settings.schedule_prune, "event")
    if not isinstance(event, Mapping):
        raise CatalogJobError("request_invalid", "the event must be a JSON object")
    if "source" in event and "detail-type" in event:
        scheduled = event.get("detail-type") == "Scheduled Event"
        return JobRequest(
            settings.schedule_mode, settings.schedule_prune, "schedule" if scheduled else "event"
        )
    unknown = sorted(str(k) for k in event if k not in ("mode", "prune"))
    if unknown:
        raise CatalogJobError(
            "request_invalid", f"unknown key(s) {', '.join(map(repr, unknown))}; send mode and prune only"
        )
    mode = event.get("mode")
    if mode not in MODES:
        raise CatalogJobError("request_invalid", f"mode must be 'plan' or 'apply'; got {mode!r}")
    prune = event.get("prune", False)
    if not isinstance(prune, bool):
        raise CatalogJobError("request_invalid", f"prune must be true or false; got {prune!r}")
    return JobRequest(str(mode), prune, "invoke")


def load_catalog(settings: JobSettings) -> CatalogConfig:
    """The catalog from the bundled file or the SSM parameter. CatalogJobError when unreadable or invalid."""
    if settings.config_file is not None:
        from kantata_bridge.catalog.config import load_config

        try:
            return load_config(settings.config_file)
        except CatalogConfigError as exc:
            raise CatalogJobError("config_invalid", str(exc)) from None
    from aws_lambda_powertools.utilities import parameters

    name = settings.config_parameter or ""
    try:
        text = parameters.get_parameter(name)
    except parameters.GetParameterError:
        raise CatalogJobError("config_unavailable", f"SSM parameter {name!r} could not be read") from None
    try:
        return parse_config_text(str(text), source=f"SSM parameter {name}")
    except CatalogConfigError as exc:
        raise CatalogJobError("config_invalid", str(exc)) from None


def read_token(settings: JobSettings) -> str:
    """The Kantata token from Secrets Manager. CatalogJobError (without the value) when unreadable or empty."""
    from aws_lambda_powertools.utilities import parameters

    from kantata_bridge.kantata.secret import fetch_token

    try:
        token = fetch_token(settings.token_secret_name)
    except parameters.GetParameterError:
        raise CatalogJobError(
            "token_unavailable", f"secret {settings.token_secret_name!r} could not be read"
        ) from None
    if not token:
        raise CatalogJobError("token_unavailable", f"secret {settings.token_secret_name!r} is empty")
    return token


@functools.cache
def _ssm() -> Any:
    import boto3

    return boto3.client("ssm")


def load_pins(settings: JobSettings) -> tuple[CatalogPins, str | None]:
    """The pins kept by the last apply, and a warning when they could not be used (the run goes on)."""
    if settings.state_parameter is None:
        return CatalogPins(), None
    from botocore.exceptions import BotoCoreError, ClientError

    client = _ssm()
    try:
        text = client.get_parameter(Name=settings.state_parameter)["Parameter"]["Value"]
    except client.exceptions.ParameterNotFound:
        return CatalogPins(), None  # the first run
    except (BotoCoreError, ClientError) as exc:
        return CatalogPins(), f"pins not read from {settings.state_parameter}: {type(exc).__name__}"
    try:
        return CatalogPins.from_json(text), None
    except PinsError as exc:
        return CatalogPins(), f"pins in {settings.state_parameter} ignored: {exc}"


def save_pins(settings: JobSettings, pins: CatalogPins) -> str | None:
    """Store the pins; a warning (not an error: Kantata is already in step) when that fails."""
    if settings.state_parameter is None:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _ssm().put_parameter(
            Name=settings.state_parameter, Value=pins.to_json(), Type="String", Overwrite=True
        )
    except (BotoCoreError, ClientError) as exc:
        return f"pins not saved to {settings.state_parameter}: {type(exc).__name__}"
    return None


def _default_client(settings: JobSettings) -> CatalogKantata:
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataValueError

    token = read_token(settings)
    try:
        return KantataClient(token, base_url=settings.base_url)
    except KantataValueError as exc:  # the message names the problem, never the value
        reason = "settings_invalid" if "base_url" in str(exc) else "token_unavailable"
        raise CatalogJobError(reason, f"cannot use the Kantata settings: {exc}") from None


def run_job(
    event: Any,
    settings: JobSettings | None = None,
    *,
    client_factory: Callable[[JobSettings], CatalogKantata] | None = None,
) -> dict[str, Any]:
    """Run one plan or apply and return its JSON summary (``ok`` false, with ``error``, when it could not).

    Never raises for bad settings, config, event or Kantata errors: they come back in the summary.
    """
    try:
        settings = settings if settings is not None else JobSettings.from_env()
        request = parse_request(event, settings)
    except CatalogJobError as exc:
        return {"ok": False, "error": exc.reason, "message": str(exc)}
    head = {"trigger": request.trigger, "mode": request.mode, "prune": request.prune}
    kantata: CatalogKantata | None = None
    try:
        config = load_catalog(settings)
        pins, pins_warning = load_pins(settings)
        kantata = (client_factory or _default_client)(settings)
        if request.mode == "plan":
            plan = plan_from_kantata(kantata, config, prune=request.prune, pins=pins)
            summary = plan_summary(plan)
            summary["ok"] = not plan.errors
        else:
            result = apply_catalog(kantata, config, prune=request.prune, pins=pins)
            summary = apply_summary(result)
            if result.pins is not None and result.pins != pins:
                pins_warning = save_pins(settings, result.pins) or pins_warning
        if pins_warning:
            summary["warnings"] = [*summary.get("warnings", []), pins_warning]
    except CatalogJobError as exc:
        return {**head, "ok": False, "error": exc.reason, "message": str(exc)}
    except KantataError as exc:
        return {**head, "ok": False, "error": "kantata_unavailable", "message": str(exc)}
    finally:
        close = getattr(kantata, "close", None)
        if callable(close):
            close()  # the client's connection pool; a new client (and token read) per run
    return {**head, **summary}
