"""`kantata-bridge catalog`: plan / apply the status catalog, or generate it from a Jira export.

    kantata-bridge catalog plan  [--prune] [--config FILE] [--base-url URL] [--token-env VAR] [--state FILE] [--json]
    kantata-bridge catalog apply [--prune] [--config FILE] [--base-url URL] [--token-env VAR] [--state FILE] [--json]
    kantata-bridge catalog from-jira EXPORT.json --set-name NAME [--project KEY] [--needs-info RULE ...]
    kantata-bridge catalog from-linear EXPORT.json --set-name NAME [--team KEY] [--needs-info RULE ...]
    kantata-bridge catalog from-gitlab EXPORT.json --set-name NAME [--workflow PATH] [--label-prefix P]
                                       [--lifecycle NAME] [--needs-info|--started|--completed RULE ...]

Exit codes: 0 done (plan: whatever it shows), 1 Kantata refused or a set cannot be planned, 2 bad input
(configuration, export, missing token).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kantata_bridge.catalog.config import CatalogConfig, CatalogConfigError, load_config, render_config_yaml
from kantata_bridge.catalog.jira import DEFAULT_NEEDS_INFO_RULES, JiraExportError, set_from_jira_export
from kantata_bridge.catalog.pins import CatalogPins, PinsError
from kantata_bridge.kantata import DEFAULT_BASE_URL

DEFAULT_CONFIG = "config/catalog.yaml"
DEFAULT_TOKEN_ENV = "KANTATA_TOKEN"  # noqa: S105 (the name of a variable, not a token)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    for name, help_text in (
        ("plan", "show what apply would change in Kantata, writing nothing"),
        ("apply", "make Kantata's task status sets match the catalog"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--prune", action="store_true", help="delete Kantata statuses not in the catalog")
        p.add_argument(
            "--config",
            default=os.environ.get("CATALOG_CONFIG_FILE", DEFAULT_CONFIG),
            help=f"catalog YAML/JSON (default: $CATALOG_CONFIG_FILE or {DEFAULT_CONFIG})",
        )
        p.add_argument(
            "--base-url",
            default=os.environ.get("KANTATA_BASE_URL", DEFAULT_BASE_URL),
            help="Kantata API base URL (default: $KANTATA_BASE_URL or the public API)",
        )
        p.add_argument(
            "--token-env",
            default=DEFAULT_TOKEN_ENV,
            metavar="VAR",
            help=f"environment variable holding the Kantata token (default: {DEFAULT_TOKEN_ENV})",
        )
        p.add_argument(
            "--state",
            metavar="FILE",
            help="JSON file of the Kantata ids pinned by the last apply, so a status renamed in Kantata is "
            "renamed back (default: <config name>.state.json beside the config; apply writes it)",
        )
        p.add_argument("--no-state", action="store_true", help="neither read nor write the state file")
        p.add_argument("--json", action="store_true", help="print the JSON summary instead of text")
    p = sub.add_parser(
        "from-jira",
        help="print catalog YAML for a Jira project from its workflow-statuses export",
        description="Read the JSON of GET /rest/api/3/project/{key}/statuses and print catalog YAML.",
    )
    p.add_argument("export", help="the export file ('-' for standard input)")
    p.add_argument("--set-name", required=True, help="the Kantata task status set's name")
    p.add_argument("--project", help="the Jira project key (recorded as the set's workflow)")
    p.add_argument(
        "--needs-info",
        action="append",
        metavar="RULE",
        help="a status name rule for the 'needs info' category: a case-insensitive substring, or /regex/ "
        f"(repeatable; default: {', '.join(DEFAULT_NEEDS_INFO_RULES)})",
    )
    _add_from_linear(sub)
    _add_from_gitlab(sub)


def run(args: argparse.Namespace) -> int:
    if args.catalog_command == "from-jira":
        return _from_jira(args)
    if args.catalog_command == "from-linear":
        return _from_linear(args)
    if args.catalog_command == "from-gitlab":
        return _from_gitlab(args)
    return _sync(args)


def _from_jira(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.export == "-" else Path(args.export).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {args.export}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        export = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"error: {args.export} is not JSON: {exc}", file=sys.stderr)
        return 2
    try:
        desired = set_from_jira_export(
            export,
            set_name=args.set_name,
            project=args.project,
            needs_info=args.needs_info or DEFAULT_NEEDS_INFO_RULES,
        )
    except (JiraExportError, CatalogConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_config_yaml(CatalogConfig(sets=(desired,))))
    return 0


def _add_from_linear(sub: Any) -> None:
    p = sub.add_parser(
        "from-linear",
        help="print catalog YAML for a Linear team from its workflowStates GraphQL answer",
        description="Read the JSON answer of a Linear workflowStates GraphQL query and print catalog YAML.",
    )
    p.add_argument("export", help="the export file ('-' for standard input)")
    p.add_argument("--set-name", required=True, help="the Kantata task status set's name")
    p.add_argument("--team", help="the Linear team key (required when the export holds several teams)")
    p.add_argument(
        "--needs-info",
        action="append",
        metavar="RULE",
        help="a state name rule for the 'needs info' category: a case-insensitive substring, or /regex/ "
        f"(repeatable; default: {', '.join(DEFAULT_NEEDS_INFO_RULES)})",
    )


def _from_linear(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.linear import LinearExportError, set_from_linear_export

    export = _read_export(args.export)
    if export is _UNREADABLE:
        return 2
    try:
        desired = set_from_linear_export(
            export,
            set_name=args.set_name,
            team=args.team,
            needs_info=args.needs_info or DEFAULT_NEEDS_INFO_RULES,
        )
    except (LinearExportError, CatalogConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_config_yaml(CatalogConfig(sets=(desired,))))
    return 0


def _add_from_gitlab(sub: Any) -> None:
    from kantata_bridge.catalog.gitlab import (
        DEFAULT_COMPLETED_RULES,
        DEFAULT_LABEL_PREFIX,
        DEFAULT_STARTED_RULES,
    )

    p = sub.add_parser(
        "from-gitlab",
        help="print catalog YAML from GitLab work item statuses or scoped workflow labels",
        description="Read GitLab's labels list (REST) or its lifecycles GraphQL answer and print catalog YAML.",
    )
    p.add_argument("export", help="the export file ('-' for standard input)")
    p.add_argument("--set-name", required=True, help="the Kantata task status set's name")
    p.add_argument("--workflow", help="the GitLab group or project path (recorded as the set's workflow)")
    p.add_argument(
        "--label-prefix",
        default=DEFAULT_LABEL_PREFIX,
        help=f"labels export: the scoped-label prefix that names statuses (default: {DEFAULT_LABEL_PREFIX})",
    )
    p.add_argument("--lifecycle", help="statuses export: the lifecycle to use when the group has several")
    for option, category, defaults in (
        ("--needs-info", "needs info", DEFAULT_NEEDS_INFO_RULES),
        ("--completed", "completed", DEFAULT_COMPLETED_RULES),
        ("--started", "started", DEFAULT_STARTED_RULES),
    ):
        p.add_argument(
            option,
            action="append",
            metavar="RULE",
            help=f"a status name rule for the '{category}' category (labels; needs info also for statuses): "
            f"a case-insensitive substring, or /regex/ (repeatable; default: {', '.join(defaults)})",
        )


def _from_gitlab(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.gitlab import (
        DEFAULT_COMPLETED_RULES,
        DEFAULT_STARTED_RULES,
        GitLabExportError,
        set_from_gitlab_export,
    )

    export = _read_export(args.export)
    if export is _UNREADABLE:
        return 2
    try:
        desired = set_from_gitlab_export(
            export,
            set_name=args.set_name,
            workflow=args.workflow,
            label_prefix=args.label_prefix,
            lifecycle=args.lifecycle,
            needs_info=args.needs_info or DEFAULT_NEEDS_INFO_RULES,
            completed=args.completed or DEFAULT_COMPLETED_RULES,
            started=args.started or DEFAULT_STARTED_RULES,
        )
    except (GitLabExportError, CatalogConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_config_yaml(CatalogConfig(sets=(desired,))))
    return 0


_UNREADABLE = object()


def _read_export(path: str) -> Any:
    """The JSON of an export file ('-': standard input), or _UNREADABLE after saying why on stderr."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return _UNREADABLE
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"error: {path} is not JSON: {exc}", file=sys.stderr)
        return _UNREADABLE


def _default_state(config: str) -> Path:
    path = Path(config)
    return path.with_name(f"{path.stem}.state.json")


def _read_pins(state: Path | None) -> CatalogPins:
    if state is None or not state.exists():
        return CatalogPins()
    try:
        return CatalogPins.from_json(state.read_text(encoding="utf-8"))
    except (OSError, PinsError) as exc:
        print(f"warning: ignoring {state}: {exc}", file=sys.stderr)
        return CatalogPins()


def _write_pins(state: Path, pins: CatalogPins) -> None:
    # Kantata is already in step; a state file that cannot be written only costs the pins (a warning).
    try:
        state.write_text(pins.to_json() + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"warning: pins not saved to {state}: {exc.strerror or exc}", file=sys.stderr)


def _sync(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.apply import apply_catalog, plan_from_kantata
    from kantata_bridge.catalog.report import apply_summary, plan_summary, render_apply, render_plan
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataError

    try:
        config = load_config(args.config)
    except CatalogConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = os.environ.get(args.token_env, "")
    if not token:
        print(
            f"error: set the Kantata token in ${args.token_env} (or choose another --token-env)",
            file=sys.stderr,
        )
        return 2
    try:
        client = KantataClient(token, base_url=args.base_url)
    except KantataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = None if args.no_state else Path(args.state or _default_state(args.config))
    pins = _read_pins(state)
    summary: dict[str, Any]
    with client:
        try:
            if args.catalog_command == "plan":
                plan = plan_from_kantata(client, config, prune=args.prune, pins=pins)
                text, summary, ok = render_plan(plan), plan_summary(plan), not plan.errors
            else:
                result = apply_catalog(client, config, prune=args.prune, pins=pins)
                text, summary, ok = render_apply(result), apply_summary(result), result.ok
                if state is not None and result.pins is not None and result.pins != pins:
                    _write_pins(state, result.pins)
        except KantataError as exc:
            print(f"error: cannot read Kantata: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(text)
    return 0 if ok else 1
