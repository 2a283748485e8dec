"""`kantata-bridge recover github` and `kantata-bridge reconcile jira`: the scheduled functions' runs, by hand.

    kantata-bridge recover github --stack-name kantata-bridge --hook repos/acme/webapp/hooks/123 [--dry-run] [--json]
    kantata-bridge reconcile jira --stack-name kantata-bridge --site https://acme.atlassian.net [--dry-run] [--json]

Each does exactly what one run of the Lambda does (same package code, same checkpoint and markers in the state
table, so a CLI run and a scheduled run never redeliver or queue the same delivery twice); ``--dry-run`` lists
what would happen and changes nothing. Credentials are read from environment variables named by flags (never
from the command line): ``GITHUB_TOKEN`` (a fine-grained PAT with the Webhooks permission), ``JIRA_EMAIL`` and
``JIRA_API_TOKEN``.

Output: the rows and a summary on stdout (``--json``: the run's JSON summary and nothing else), diagnostics
on stderr. Exit codes: 0 the run finished, 1 it did not (a hook or the search could not be read, GitHub
refused a redelivery, …; the summary says what), 2 bad input (a flag, a missing credential or table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from typing import Any, Final

from kantata_bridge_cli import aws, console

TOOL: Final = "kantata-bridge"
# Upper bound of the whole-number flags: far beyond any sensible window, well inside what timedelta holds.
_MAX_WHOLE: Final = 1_000_000


class UsageError(console.CliError):
    """Something the user typed or must set is missing or wrong (exit 2)."""


_EXIT_CODES: Final = (
    "exit codes: 0 the run finished, 1 it did not (the summary says why), 2 bad input, 130 interrupted"
)
_GITHUB_EXAMPLES: Final = f"""\
examples:
  export GITHUB_TOKEN=...        # a fine-grained token with the Webhooks permission (never on the command line)
  kantata-bridge recover github --stack-name kantata-bridge --hook repos/acme/webapp/hooks/123 --dry-run
  kantata-bridge recover github --stack-name kantata-bridge --hook orgs/acme/hooks/456 --json
  kantata-bridge recover github --state-table <StateTableName> --region eu-west-1 \\
      --hook repos/acme/webapp/hooks/123 --since 2026-11-20T00:00:00Z

{_EXIT_CODES}
"""
_JIRA_EXAMPLES: Final = f"""\
examples:
  export JIRA_EMAIL=me@acme.example JIRA_API_TOKEN=...   # the account's e-mail and API token
  kantata-bridge reconcile jira --stack-name kantata-bridge --site https://acme.atlassian.net --dry-run
  kantata-bridge reconcile jira --stack-name kantata-bridge --site https://acme.atlassian.net \\
      --project PROJ --project OPS --json
  kantata-bridge reconcile jira --stack-name kantata-bridge --site https://acme.atlassian.net \\
      --routing-config routing.yaml --since 2026-11-20T00:00:00Z

{_EXIT_CODES}
"""
EXAMPLES: Final = {"recover": _GITHUB_EXAMPLES, "reconcile": _JIRA_EXAMPLES}


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    sub = parser.add_subparsers(dest="tracker", metavar="TRACKER", required=True)
    if name == "recover":
        help_text = "redeliver failed GitHub webhook deliveries"
        _github_arguments(
            sub.add_parser("github", help=help_text, description=help_text, epilog=_GITHUB_EXAMPLES)
        )
    else:
        help_text = "queue Jira changes the bridge never processed"
        _jira_arguments(sub.add_parser("jira", help=help_text, description=help_text, epilog=_JIRA_EXAMPLES))


def _where(parser: argparse.ArgumentParser, *, queue: bool) -> None:
    where = parser.add_argument_group("where (flags, else --stack-name outputs, else the environment)")
    where.add_argument("--stack-name", help="read StateTableName (and QueueUrl) from this stack's outputs")
    where.add_argument("--state-table", help="the bridge's state table (env STATE_TABLE)")
    if queue:
        where.add_argument("--queue-url", help="the events queue (env QUEUE_URL)")
    aws.add_arguments(where)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=_since,
        help="start the window at this ISO 8601 time (default: the checkpoint minus the overlap)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would happen; change nothing")
    parser.add_argument("--json", action="store_true", help="print the run's JSON summary and nothing else")


def _github_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hook",
        action="append",
        default=[],
        metavar="HOOK",
        help="repos/<owner>/<repo>/hooks/<id> or orgs/<org>/hooks/<id> (repeatable; env GITHUB_RECOVERY_HOOKS)",
    )
    p.add_argument(
        "--token-env",
        default="GITHUB_TOKEN",
        metavar="VAR",
        help="environment variable holding the GitHub token (default GITHUB_TOKEN)",
    )
    p.add_argument(
        "--api-url", default=None, help="GitHub API root (env GITHUB_API_URL; default api.github.com)"
    )
    p.add_argument(
        "--events", default=None, help="event types to recover, comma list or * (default issues,pull_request)"
    )
    p.add_argument(
        "--max-redeliveries", type=_whole(1), default=None, help="redeliveries per delivery (default 3)"
    )
    p.add_argument(
        "--overlap-minutes", type=_whole(0), default=None, help="re-read this much before the checkpoint"
    )
    p.add_argument("--lookback-hours", type=_whole(1), default=None, help="first run's window (default 72)")
    _common(p)
    _where(p, queue=False)


def _jira_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--site", default=None, help="the Jira site, e.g. https://acme.atlassian.net (env JIRA_BASE_URL)"
    )
    p.add_argument(
        "--email-env",
        default="JIRA_EMAIL",
        metavar="VAR",
        help="variable holding the account's e-mail (default JIRA_EMAIL)",
    )
    p.add_argument(
        "--token-env",
        default="JIRA_API_TOKEN",
        metavar="VAR",
        help="variable holding the account's API token (default JIRA_API_TOKEN)",
    )
    routing = p.add_mutually_exclusive_group()
    routing.add_argument(
        "--project", action="append", default=None, metavar="KEY", help="a project to sweep (repeatable)"
    )
    routing.add_argument(
        "--routing-config", metavar="FILE", help="take the projects from this routing document"
    )
    routing.add_argument("--routing-parameter", metavar="NAME", help="…or from this SSM parameter")
    p.add_argument(
        "--overlap-minutes", type=_whole(1), default=None, help="re-read this much before the checkpoint"
    )
    p.add_argument(
        "--settle-minutes", type=_whole(0), default=None, help="leave the last minutes to webhooks"
    )
    p.add_argument("--lookback-minutes", type=_whole(1), default=None, help="first run's window (default 60)")
    _common(p)
    _where(p, queue=True)


def _since(text: str) -> dt.datetime:
    from kantata_bridge.recovery.state import RunRequestError, parse_since

    try:
        return parse_since(text)
    except RunRequestError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole(minimum: int) -> Any:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not minimum <= int(text) <= _MAX_WHOLE:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {minimum} and <= {_MAX_WHOLE}; got {text!r}"
            )
        return int(text)

    return parse


def run(args: argparse.Namespace) -> int:
    """One run. Bad input and AWS settings that do not work raise CliError (exit 2, one line)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.command == "recover":
            return _recover_github(args)
        return _reconcile_jira(args)
    except (BotoCoreError, ClientError) as exc:
        raise aws.describe(exc, args, what="the stack or the state table") from None
    except KeyboardInterrupt:
        console.note(TOOL, "interrupted: what was done stays done; the next run picks up the rest")
        return console.EXIT_INTERRUPTED


# ---------------------------------------------------------------------- AWS


def _outputs(args: argparse.Namespace, session: Any) -> dict[str, str]:
    if not args.stack_name:
        return {}
    from kantata_bridge_cli.redrive import RedriveError, stack_outputs

    try:
        return stack_outputs(session, args.stack_name, args.endpoint_url)
    except RedriveError as exc:
        raise UsageError(str(exc)) from None


def _required_env(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(f"{what}: environment variable {name} is empty or not set")
    return value


# ---------------------------------------------------------------------- GitHub


def _recover_github(args: argparse.Namespace) -> int:
    from kantata_bridge.recovery.github import (
        DEFAULT_LOOKBACK_HOURS,
        DEFAULT_MAX_REDELIVERIES,
        DEFAULT_OVERLAP_MINUTES,
        RecoverySettings,
        RecoverySettingsError,
        build_recovery,
        parse_events,
        parse_hooks,
    )
    from kantata_bridge.recovery.github_api import DEFAULT_API_URL, GitHubClient

    try:
        if args.hook:
            hooks = parse_hooks(" ".join(args.hook), "--hook")
        else:
            hooks = parse_hooks(
                os.environ.get("GITHUB_RECOVERY_HOOKS", ""), "--hook (or GITHUB_RECOVERY_HOOKS)"
            )
    except RecoverySettingsError as exc:
        raise UsageError(str(exc)) from None
    token = _required_env(args.token_env, "the GitHub token")
    session = aws.session(args)
    outputs = _outputs(args, session)
    table = args.state_table or outputs.get("StateTableName") or os.environ.get("STATE_TABLE")
    if not table:
        raise UsageError("no state table: pass --state-table or --stack-name, or set STATE_TABLE")
    api_url = args.api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    settings = RecoverySettings(
        state_table=table,
        hooks=hooks,
        api_url=api_url,
        overlap=dt.timedelta(minutes=_pick(args.overlap_minutes, DEFAULT_OVERLAP_MINUTES)),
        lookback=dt.timedelta(hours=_pick(args.lookback_hours, DEFAULT_LOOKBACK_HOURS)),
        max_redeliveries=_pick(args.max_redeliveries, DEFAULT_MAX_REDELIVERIES),
        events=parse_events(args.events or ""),
    )
    try:
        client = GitHubClient(token, api_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    recovery = build_recovery(settings, token, dynamodb=aws.client(session, "dynamodb", args), client=client)
    try:
        report = recovery.run(dry_run=args.dry_run, since=args.since)
    finally:
        client.close()
    summary = report.to_dict()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_github(report)
    for hook in report.hooks:
        if hook.error:
            console.error(TOOL, f"{hook.hook}: {hook.error}")
    for row in report.candidates:
        if row.result in ("refused", "uncertain"):
            console.note(TOOL, f"warning: {row.hook} delivery {row.delivery_id}: {row.result}: {row.detail}")
    return 0 if report.ok else 1


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width text table (header, dashes, rows)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def _print_github(report: Any) -> None:
    verb = "would be redelivered" if report.dry_run else "redelivered"
    for hook in report.hooks:
        print(
            f"{hook.hook}: {hook.listed} deliveries listed since {hook.window_start or '?'}, "
            f"{hook.delivered_guids} delivered; checkpoint {hook.checkpoint or 'none'}"
        )
    if report.candidates:
        rows = [
            [
                c.delivered_at,
                c.hook,
                str(c.delivery_id),
                c.guid,
                f"{c.event}.{c.action}" if c.action else c.event,
                c.status,
                c.result,
            ]
            for c in report.candidates
        ]
        print(format_table(["delivered at", "hook", "delivery", "guid", "event", "status", "result"], rows))
    count = report.count("would redeliver") if report.dry_run else report.redelivered
    print(f"{count} failed deliveries {verb}")


# ---------------------------------------------------------------------- Jira


def _reconcile_jira(args: argparse.Namespace) -> int:
    from kantata_bridge.reconcile.jira import (
        DEFAULT_INITIAL_LOOKBACK_MINUTES,
        DEFAULT_OVERLAP_MINUTES,
        DEFAULT_SETTLE_MINUTES,
        ReconcileSettings,
        ReconcileSettingsError,
        RoutingProjects,
        build_reconciler,
    )
    from kantata_bridge.reconcile.jira_api import JiraClient

    site = (args.site or os.environ.get("JIRA_BASE_URL") or "").strip()
    if not site:
        raise UsageError("no Jira site: pass --site https://<site>.atlassian.net or set JIRA_BASE_URL")
    email = _required_env(args.email_env, "the Jira account's e-mail")
    token = _required_env(args.token_env, "the Jira API token")
    overlap = _pick(args.overlap_minutes, DEFAULT_OVERLAP_MINUTES)
    settle = _pick(args.settle_minutes, DEFAULT_SETTLE_MINUTES)
    if overlap <= settle:
        raise UsageError("--overlap-minutes must be larger than --settle-minutes")
    session = aws.session(args)
    outputs = _outputs(args, session)
    table = args.state_table or outputs.get("StateTableName") or os.environ.get("STATE_TABLE")
    queue_url = args.queue_url or outputs.get("QueueUrl") or os.environ.get("QUEUE_URL")
    if not table:
        raise UsageError("no state table: pass --state-table or --stack-name, or set STATE_TABLE")
    if not queue_url and not args.dry_run:
        raise UsageError("no events queue: pass --queue-url or --stack-name, or set QUEUE_URL")
    parameter = args.routing_parameter or (
        None if args.routing_config or args.project else outputs.get("RoutingConfigParameter")
    )
    if args.project is None and not args.routing_config and not parameter:
        raise UsageError(
            "which projects? pass --project KEY, --routing-config FILE, --routing-parameter or --stack-name"
        )
    settings = ReconcileSettings(
        state_table=table,
        queue_url=queue_url or "",
        base_url=site.rstrip("/"),
        routing_config_file=args.routing_config,
        routing_config_parameter=parameter,
        overlap=dt.timedelta(minutes=overlap),
        settle=dt.timedelta(minutes=settle),
        initial_lookback=dt.timedelta(minutes=_pick(args.lookback_minutes, DEFAULT_INITIAL_LOOKBACK_MINUTES)),
    )
    if args.project is not None:
        projects = sorted({p.strip().upper() for p in args.project if p.strip()})
        if not projects:
            raise UsageError("--project needs a project key")

        def listed() -> list[str]:
            return projects

        source: Any = listed
    else:
        source = (
            RoutingProjects(settings) if not parameter else _SsmProjects(settings, session, args.endpoint_url)
        )
        if args.routing_config:
            # A file the user named is bad input (exit 2) when it cannot be read or is invalid; the run
            # would only report it as a failed sweep (exit 1).
            try:
                source()
            except ReconcileSettingsError as exc:
                raise UsageError(str(exc)) from None
    try:
        client = JiraClient(settings.base_url, email, token)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    reconciler = build_reconciler(
        settings,
        email,
        token,
        dynamodb=aws.client(session, "dynamodb", args),
        queue=_queue(queue_url, session, args.endpoint_url) if queue_url else None,
        client=client,
        projects=source,
    )
    try:
        report = reconciler.run(dry_run=args.dry_run, since=args.since)
    finally:
        client.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_jira(report)
    if report.error:
        console.error(TOOL, report.error)
    return 0 if report.ok else 1


class _SsmProjects:
    """The routed projects from an SSM parameter, read through the CLI's session."""

    def __init__(self, settings: Any, session: Any, endpoint_url: str | None) -> None:
        self.settings = settings
        self.session = session
        self.endpoint_url = endpoint_url

    def __call__(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError
        from kantata_bridge.mapping.config import ConfigError, parse_config
        from kantata_bridge.reconcile.jira import ReconcileSettingsError, jira_projects

        name = str(self.settings.routing_config_parameter)
        try:
            text = self.session.client("ssm", endpoint_url=self.endpoint_url).get_parameter(Name=name)[
                "Parameter"
            ]["Value"]
        except (BotoCoreError, ClientError) as exc:
            raise ReconcileSettingsError(
                f"ssm:{name}: cannot read the routing document ({type(exc).__name__})"
            ) from None
        try:
            return jira_projects(parse_config(text, f"ssm:{name}"))
        except ConfigError as exc:
            raise ReconcileSettingsError(f"routing document invalid: {exc}") from None


def _queue(queue_url: str, session: Any, endpoint_url: str | None) -> Any:
    from kantata_bridge.receiver.clients import AwsClients, client_config
    from kantata_bridge.receiver.queue import SqsDeliveryQueue

    class Clients(AwsClients):
        def client(self, service: str) -> Any:
            if service not in self._clients:
                self._clients[service] = self.session.client(
                    service, config=client_config(), endpoint_url=endpoint_url
                )
            return self._clients[service]

    return SqsDeliveryQueue(queue_url, clients=Clients(session))


def _print_jira(report: Any) -> None:
    print(
        f"projects {', '.join(report.projects) or '(none routed)'}: window from {report.window_start or '?'} "
        f"to {report.cutoff}, {report.pages} page(s); checkpoint {report.checkpoint or 'none'}"
    )
    if report.issues:
        rows = [[i.key, i.updated, i.result, i.detail] for i in report.issues]
        print(format_table(["issue", "updated", "result", "detail"], rows))
    count = report.count("would enqueue") if report.dry_run else report.enqueued
    verb = "would be queued" if report.dry_run else "queued"
    print(f"{count} missed changes {verb}, {report.up_to_date} already applied")
