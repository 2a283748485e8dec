"""`kantata-bridge catalog`: plan / apply the status catalog, or generate it from a Jira export.

    kantata-bridge catalog plan  [--prune] [--config FILE] [--base-url URL] [--token-env VAR]
                                 [--state FILE | --no-state] [--json] [--detailed-exitcode]
    kantata-bridge catalog apply [--prune] [--config FILE] [--base-url URL] [--token-env VAR]
                                 [--state FILE | --no-state] [--json] [--auto-approve]
    kantata-bridge catalog from-jira EXPORT.json --set-name NAME [--project KEY] [--needs-info RULE ...]
    kantata-bridge catalog from-linear EXPORT.json --set-name NAME [--team KEY] [--needs-info RULE ...]
    kantata-bridge catalog from-gitlab EXPORT.json --set-name NAME [--workflow PATH] [--label-prefix P]
                                       [--lifecycle NAME] [--needs-info|--started|--completed RULE ...]

Standard output carries the data (the plan, the apply report, the JSON summary, the generated YAML);
everything else (the Kantata URL, retries, warnings, errors, the confirmation prompt) goes to standard error.
Exit codes: 0 done; 1 failed (Kantata refused or could not be read, a set cannot be planned, the apply was
declined or interrupted, the output was cut off); 2 bad input or usage. ``plan --detailed-exitcode``:
0 no changes, 2 changes, 1 anything else (bad input included).

Each subcommand is two functions: ``_add_<name>(subparsers)`` declares it, and the function it sets as
``catalog_run`` runs it. To add one, write the pair and list the first in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kantata_bridge.catalog.config import CatalogConfig, CatalogConfigError, load_config, render_config_yaml
from kantata_bridge.catalog.jira import DEFAULT_NEEDS_INFO_RULES, JiraExportError, set_from_jira_export
from kantata_bridge.catalog.pins import CatalogPins, PinsError

from kantata_bridge_cli.diagnostics import terminal_diagnostics
from kantata_bridge_cli.kantata_options import (
    SANDBOX_HINT,
    add_kantata_options,
    shown_url,
    target_line,
    url_problem,
)

if TYPE_CHECKING:
    from kantata_bridge.kantata.client import KantataClient

TOOL = "kantata-bridge"
DEFAULT_CONFIG = "config/catalog.yaml"

EXAMPLES = """\
examples:
  kantata-bridge catalog from-jira statuses.json --set-name "PROJ workflow" --project PROJ > config/catalog.yaml
  kantata-bridge catalog plan --config config/catalog.yaml        # what apply would change in Kantata
  kantata-bridge catalog apply --config config/catalog.yaml       # asks first on a terminal
  kantata-bridge catalog plan --detailed-exitcode --json > plan.json   # CI drift check: 2 = drift
  kantata-bridge catalog ACTION --help                            # each action's options and examples

exit codes: 0 done, 1 failed, 2 bad input (plan --detailed-exitcode: 0 no changes, 2 changes)
"""
EXAMPLE_CONFIG = "config/catalog.example.yaml"


class CatalogCliError(Exception):
    """Ends the command with ``error: <message>`` (and an optional hint line) on stderr and exit ``code``."""

    def __init__(self, message: str, *, code: int = 2, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


# ---------------------------------------------------------------- the subcommands' arguments


def _add_sync_options(p: argparse.ArgumentParser) -> None:
    """The options plan and apply share."""
    p.add_argument("--prune", action="store_true", help="delete Kantata statuses not in the catalog")
    p.add_argument(
        "--config",
        default=os.environ.get("CATALOG_CONFIG_FILE", DEFAULT_CONFIG),
        help=f"catalog YAML/JSON (default: $CATALOG_CONFIG_FILE or {DEFAULT_CONFIG})",
    )
    add_kantata_options(p)
    p.add_argument(
        "--state",
        metavar="FILE",
        help="JSON file of the Kantata ids pinned by the last apply, so a status renamed in Kantata is "
        "renamed back (default: <config name>.state.json beside the config; apply writes it)",
    )
    p.add_argument("--no-state", action="store_true", help="neither read nor write the state file")
    p.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")


def _parser(sub: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _add_plan(sub: Any) -> None:
    p = _parser(
        sub,
        "plan",
        "show what apply would change in Kantata, writing nothing",
        """examples:
  kantata-bridge catalog plan --config config/catalog.yaml
  kantata-sandbox --port 8900 &    # a local Kantata to try it on (token: sandbox-token)
  KANTATA_TOKEN=sandbox-token kantata-bridge catalog plan --base-url http://127.0.0.1:8900/api/v1
  kantata-bridge catalog plan --detailed-exitcode --json > plan.json   # CI drift check: 2 = drift

exit codes: 0 done (without --detailed-exitcode, whatever the plan shows), 1 failed, 2 bad input;
with --detailed-exitcode: 0 no changes, 2 changes, 1 anything else""",
    )
    _add_sync_options(p)
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on any error (for CI drift checks)",
    )
    p.set_defaults(catalog_run=_plan, catalog_interrupted="nothing was written to Kantata")


def _add_apply(sub: Any) -> None:
    p = _parser(
        sub,
        "apply",
        "make Kantata's task status sets match the catalog",
        """examples:
  kantata-bridge catalog apply --config config/catalog.yaml     # shows the plan, asks for 'yes'
  kantata-bridge catalog apply --auto-approve --json            # CI and scripts: no question
  KANTATA_TOKEN=sandbox-token kantata-bridge catalog apply --base-url http://127.0.0.1:8900/api/v1

On a terminal, apply shows the plan and asks before writing. When standard input is not a terminal it
refuses (exit 2) unless --auto-approve is given. It saves the Kantata ids it pinned in the state file.
exit codes: 0 done, 1 failed or declined (run apply again: it re-plans from Kantata), 2 bad input""",
    )
    _add_sync_options(p)
    p.add_argument(
        "--auto-approve",
        action="store_true",
        help="apply without showing the plan and asking (needed when standard input is not a terminal)",
    )
    p.set_defaults(
        catalog_run=_apply,
        catalog_interrupted="if the apply had started writing, run it again: it re-plans from Kantata",
    )


def _add_from_jira(sub: Any) -> None:
    p = _parser(
        sub,
        "from-jira",
        "print catalog YAML for a Jira project from its workflow-statuses export",
        """examples:
  curl -u me@example.com:$JIRA_API_TOKEN \\
    https://example.atlassian.net/rest/api/3/project/PROJ/statuses > statuses.json
  kantata-bridge catalog from-jira statuses.json --set-name "PROJ workflow" --project PROJ > config/catalog.yaml
  kantata-bridge catalog from-jira - --set-name "PROJ workflow" --needs-info "/^blocked/" < statuses.json

exit codes: 0 done, 2 bad input (an unreadable file, not JSON, not a Jira export, a bad rule)""",
    )
    p.description = "Read the JSON of GET /rest/api/3/project/{key}/statuses and print catalog YAML."
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
    p.set_defaults(catalog_run=_from_jira, catalog_interrupted="nothing was printed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    for add in SUBCOMMANDS:
        add(sub)


def run(args: argparse.Namespace) -> int:
    """Run the chosen subcommand. Whatever a user can cause (bad input, Kantata unreachable, Ctrl-C, a reader
    that closes the pipe early) ends in one or two lines on stderr and the documented exit code."""
    try:
        with terminal_diagnostics():
            code = int(args.catalog_run(args))
            sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
            return code
    except CatalogCliError as exc:
        _say(f"{TOOL}: error: {exc}")
        if exc.hint:
            _say(exc.hint)
        # With --detailed-exitcode, 2 means "changes": bad input is an error like any other.
        return 1 if getattr(args, "detailed_exitcode", False) and exc.code == 2 else exc.code
    except KeyboardInterrupt:
        _say(f"\n{TOOL}: error: interrupted; {args.catalog_interrupted}")
        return 1
    except BrokenPipeError:
        _discard_stdout()
        _say(f"{TOOL}: error: the output was closed before all of it was written (broken pipe)")
        return 1


def _say(line: str) -> None:
    """A line on stderr; a closed stderr (``2>&1 | head``) is not worth a traceback."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _discard_stdout() -> None:
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that from raising a second time.
    with contextlib.suppress(OSError, ValueError):  # no real file descriptor (e.g. captured in tests)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# ---------------------------------------------------------------- from-jira


def _read_export(path: str, what: str) -> Any:
    """The JSON of an export file ('-': standard input). Raises CatalogCliError saying what is wrong."""
    where = "standard input" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CatalogCliError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CatalogCliError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CatalogCliError(f"{where} is not JSON: {exc}") from None
    except RecursionError:
        raise CatalogCliError(f"{where} is nested too deeply to be {what}") from None


def _from_jira(args: argparse.Namespace) -> int:
    export = _read_export(args.export, "a Jira export")
    try:
        desired = set_from_jira_export(
            export,
            set_name=args.set_name,
            project=args.project,
            needs_info=args.needs_info or DEFAULT_NEEDS_INFO_RULES,
        )
    except (JiraExportError, CatalogConfigError) as exc:
        raise CatalogCliError(str(exc)) from None
    sys.stdout.write(render_config_yaml(CatalogConfig(sets=(desired,))))
    return 0


# ---------------------------------------------------------------- from-linear, from-gitlab


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
    p.set_defaults(catalog_run=_from_linear, catalog_interrupted="nothing was printed")


def _from_linear(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.linear import LinearExportError, set_from_linear_export

    export = _read_export(args.export, "a Linear export")
    try:
        desired = set_from_linear_export(
            export,
            set_name=args.set_name,
            team=args.team,
            needs_info=args.needs_info or DEFAULT_NEEDS_INFO_RULES,
        )
    except (LinearExportError, CatalogConfigError) as exc:
        raise CatalogCliError(str(exc)) from None
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
    p.set_defaults(catalog_run=_from_gitlab, catalog_interrupted="nothing was printed")


def _from_gitlab(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.gitlab import (
        DEFAULT_COMPLETED_RULES,
        DEFAULT_STARTED_RULES,
        GitLabExportError,
        set_from_gitlab_export,
    )

    export = _read_export(args.export, "a GitLab export")
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
        raise CatalogCliError(str(exc)) from None
    sys.stdout.write(render_config_yaml(CatalogConfig(sets=(desired,))))
    return 0


# ---------------------------------------------------------------- plan and apply


@dataclass(frozen=True, slots=True)
class _Sync:
    """What plan and apply start from, all checked before Kantata is contacted."""

    config: CatalogConfig
    token: str
    base_url: str
    state: Path | None
    pins: CatalogPins


def _plan(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.apply import plan_from_kantata
    from kantata_bridge.catalog.report import plan_summary, render_plan

    sync = _prepare(args)
    _say(_target_line(sync.base_url))
    with _client(sync) as client:
        plan = _reading(
            sync, lambda: plan_from_kantata(client, sync.config, prune=args.prune, pins=sync.pins)
        )
    if args.json:
        print(json.dumps(plan_summary(plan), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_plan(plan, colour=_colour(sys.stdout)))
    if plan.errors:
        return 1
    return 2 if args.detailed_exitcode and plan.changes else 0


def _apply(args: argparse.Namespace) -> int:
    from kantata_bridge.catalog.apply import apply_catalog, plan_from_kantata
    from kantata_bridge.catalog.report import apply_summary, render_apply, render_plan

    sync = _prepare(args)
    if not args.auto_approve and not _interactive():
        raise CatalogCliError(
            "catalog apply asks for confirmation, and standard input is not a terminal",
            hint="Review the changes with 'kantata-bridge catalog plan', then run apply with --auto-approve.",
        )
    _say(_target_line(sync.base_url))
    _say(
        f"State file: {sync.state} (apply saves the pinned Kantata ids there)"
        if sync.state
        else "State file: none (--no-state: no pins are read or saved)"
    )
    with _client(sync) as client:
        approved = None
        if not args.auto_approve:
            approved = _reading(
                sync, lambda: plan_from_kantata(client, sync.config, prune=args.prune, pins=sync.pins)
            )
            if approved.changes:
                sys.stderr.write(render_plan(approved, colour=_colour(sys.stderr)))
                count = len(approved.changes)
                question = (
                    f"\nApply {'this change' if count == 1 else f'these {count} changes'} to Kantata at "
                    f"{_shown_url(sync.base_url)}? Only 'yes' applies: "
                )
                if not _confirm(question):
                    raise CatalogCliError("apply declined; nothing was written to Kantata", code=1)
        result = _reading(
            sync,
            lambda: apply_catalog(client, sync.config, prune=args.prune, pins=sync.pins, approved=approved),
        )
    if sync.state is not None and result.pins is not None and result.pins != sync.pins:
        _write_pins(sync.state, result.pins)
    if args.json:
        print(json.dumps(apply_summary(result), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_apply(result, colour=_colour(sys.stdout)))
    return 0 if result.ok else 1


def _prepare(args: argparse.Namespace) -> _Sync:
    """Check everything plan and apply need before contacting Kantata. CatalogCliError (exit 2) if not."""
    config = _load(args.config)
    _check_url(args.base_url)
    token = os.environ.get(args.token_env, "")
    if not token:
        raise CatalogCliError(
            f"set the Kantata token in ${args.token_env} (or choose another --token-env)", hint=SANDBOX_HINT
        )
    state = None if args.no_state else Path(args.state or _default_state(args.config))
    return _Sync(config, token, args.base_url, state, _read_pins(state))


def _load(path: str) -> CatalogConfig:
    if not Path(path).exists():
        raise CatalogCliError(
            f"no catalog at {path}",
            hint=f"Start from the example: cp {EXAMPLE_CONFIG} {path} (then edit it), or generate one: "
            f"kantata-bridge catalog from-jira EXPORT.json --set-name NAME > {path}",
        )
    try:
        return load_config(path)
    except CatalogConfigError as exc:
        raise CatalogCliError(str(exc)) from None


def _check_url(url: str) -> None:
    problem = url_problem(url)
    if problem:
        raise CatalogCliError(problem, hint=SANDBOX_HINT)


_shown_url = shown_url
_target_line = target_line


def _client(sync: _Sync) -> KantataClient:
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataError

    try:
        return KantataClient(sync.token, base_url=sync.base_url)
    except KantataError as exc:  # the message never holds the token
        raise CatalogCliError(f"the Kantata token or URL is not usable: {exc}") from None


def _reading[T](sync: _Sync, read: Callable[[], T]) -> T:
    """``read()``, with a KantataError (Kantata unreachable or refusing to be read) as exit 1 naming the URL."""
    from kantata_bridge.kantata.errors import AuthenticationError, KantataConnectionError, KantataError

    try:
        return read()
    except KantataError as exc:
        message = str(exc).removeprefix("Kantata ")
        hint = None
        if isinstance(exc, KantataConnectionError):
            hint = "Check --base-url. " + SANDBOX_HINT
        elif isinstance(exc, AuthenticationError):
            hint = "Check the token in the variable --token-env names."
        raise CatalogCliError(
            f"cannot read Kantata at {_shown_url(sync.base_url)}: {message}", code=1, hint=hint
        ) from None


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _confirm(question: str) -> bool:
    """Ask on stderr, read the answer from stdin (stdout stays for the report). End of input is a no."""
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stderr.write("\n")
    return answer.strip() == "yes"


def _colour(stream: TextIO) -> bool:
    """ANSI colour only for a terminal, and never with NO_COLOR set (no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _default_state(config: str) -> Path:
    path = Path(config)
    return path.with_name(f"{path.stem}.state.json")


def _read_pins(state: Path | None) -> CatalogPins:
    if state is None or not state.exists():
        return CatalogPins()
    try:
        return CatalogPins.from_json(state.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PinsError) as exc:
        _say(f"{TOOL}: warning: ignoring {state}: {exc}")
        return CatalogPins()


def _write_pins(state: Path, pins: CatalogPins) -> None:
    # Kantata is already in step; a state file that cannot be written only costs the pins (a warning).
    try:
        state.write_text(pins.to_json() + "\n", encoding="utf-8")
    except OSError as exc:
        _say(f"{TOOL}: warning: pins not saved to {state}: {exc.strerror or exc}")


# Every subcommand: its parser function (which sets the function it runs). Listed last: they are all defined.
SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    _add_plan,
    _add_apply,
    _add_from_jira,
    _add_from_linear,
    _add_from_gitlab,
)
