"""`kantata-bridge link`: link Kantata workspaces to tracker sources, so their events route with no config edit.

    kantata-bridge link add    --workspace ID TRACKER SOURCE [--url URL] [--replace] [--json]
    kantata-bridge link list   [--workspace ID] [--tracker TRACKER] [--json]
    kantata-bridge link remove --workspace ID TRACKER SOURCE [--json]
    (each also takes --base-url URL and --token-env VAR)

A link is an external reference on the workspace (``subject_type`` Workspace, ``service_name`` the tracker,
``service_model`` from ``mapping.links.LINK_MODELS``, ``service_model_ref`` the source, normalised). Kantata keeps
one reference per ``service_name`` on an object, so a workspace has at most one link per tracker: ``add``
refuses to replace another one without ``--replace``. The worker reads the links (``mapping.links``); routes in
the routing document win over them.

Standard output carries the data (what was done, the table, or ``--json``'s JSON); the Kantata URL, notes,
retries and errors go to standard error. Exit codes: 0 done; 1 failed (Kantata refused or could not be reached,
the workspace is not found, nothing to remove); 2 bad input (a flag, a source, a workspace id, no token, or a
link that ``add`` would replace without ``--replace``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from kantata_bridge.mapping.links import (
    DEFAULT_MAX_AGE_SECONDS,
    LINK_MODELS,
    LinkError,
    LinkTarget,
    WorkspaceLink,
    link_target,
    read_links,
    source_url,
    target_of,
)

from kantata_bridge_cli import console
from kantata_bridge_cli.kantata_options import (
    SANDBOX_HINT,
    add_kantata_options,
    shown_url,
    target_line,
    url_problem,
)

if TYPE_CHECKING:
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataError
    from kantata_bridge.kantata.models import ExternalReference

TOOL: Final = "kantata-bridge"
_DIGITS = re.compile(r"[0-9]+")
_CACHE_MINUTES = round(DEFAULT_MAX_AGE_SECONDS / 60)

EXAMPLES: Final = """\
examples:
  export KANTATA_TOKEN=...                                   # a Kantata API token (never on the command line)
  kantata-bridge link add --workspace 41234567 github acme/webapp
  kantata-bridge link add --workspace 41234568 github 'acme/*'      # every acme repository without its own link
  kantata-bridge link add --workspace 41234569 jira PROJ --url https://acme.atlassian.net/browse/PROJ
  kantata-bridge link list                                   # every workspace link, as a table
  kantata-bridge link list --workspace 41234567 --json
  kantata-bridge link remove --workspace 41234567 github acme/webapp
  kantata-sandbox --port 8900 &                              # a local Kantata to try it on
  KANTATA_TOKEN=sandbox-token kantata-bridge link list --base-url http://127.0.0.1:8900/api/v1

Routes in the routing document win; links are read by the worker and cached 5 minutes.
exit codes: 0 done, 1 failed (Kantata refused or unreachable, nothing to remove), 2 bad input, 130 interrupted
"""

_ADD_EXAMPLES: Final = """\
examples:
  kantata-bridge link add --workspace 41234567 github acme/webapp
  kantata-bridge link add --workspace 41234567 github 'acme/*'       # the organisation (repository links win)
  kantata-bridge link add --workspace 41234567 gitlab acme/platform/checkout --url https://gitlab.com/acme/platform/checkout
  kantata-bridge link add --workspace 41234567 linear ENG
  kantata-bridge link add --workspace 41234567 github acme/other --replace   # move its github link

A workspace holds one link per tracker (Kantata keeps one external reference per service name):
linking it to another source of the same tracker replaces the first, so add asks for --replace.
exit codes: 0 linked (or already linked), 1 failed, 2 bad input or a link --replace would replace
"""

_LIST_EXAMPLES: Final = """\
examples:
  kantata-bridge link list
  kantata-bridge link list --tracker jira
  kantata-bridge link list --workspace 41234567 --json

Links of archived workspaces are listed but route nothing (Kantata hides archived workspaces).
exit codes: 0 done (also when there are no links), 1 failed, 2 bad input
"""

_REMOVE_EXAMPLES: Final = """\
examples:
  kantata-bridge link remove --workspace 41234567 github acme/webapp
  kantata-bridge link remove --workspace 41234567 jira PROJ --json

exit codes: 0 removed, 1 failed or nothing to remove, 2 bad input
"""


# ---------------------------------------------------------------- arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="link_command", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="link a workspace to a tracker source",
        description="Link a Kantata workspace to a tracker source: its events then route there.",
        epilog=_ADD_EXAMPLES,
    )
    _workspace_option(add, required=True)
    _source_arguments(add)
    add.add_argument(
        "--url",
        help="the source's page, shown in Kantata (default for GitHub: https://github.com/OWNER/REPO; "
        "for Jira, GitLab and Linear only when given, as their address depends on the site)",
    )
    add.add_argument(
        "--replace",
        action="store_true",
        help="replace the workspace's link to another source of the same tracker",
    )
    _common(add)
    add.set_defaults(link_run=_add, link_interrupted="run 'link list' to see whether the link was written")

    listing = sub.add_parser(
        "list",
        help="list workspace links",
        description="List the Kantata workspaces linked to tracker sources.",
        epilog=_LIST_EXAMPLES,
    )
    _workspace_option(listing, required=False)
    listing.add_argument("--tracker", choices=list(LINK_MODELS), help="only this tracker's links")
    _common(listing)
    listing.set_defaults(link_run=_list, link_interrupted="nothing was changed")

    remove = sub.add_parser(
        "remove",
        help="remove a workspace's link to a tracker source",
        description="Remove a Kantata workspace's link to a tracker source (its external reference).",
        epilog=_REMOVE_EXAMPLES,
    )
    _workspace_option(remove, required=True)
    _source_arguments(remove)
    _common(remove)
    remove.set_defaults(link_run=_remove, link_interrupted="run 'link list' to see whether it was removed")


def _workspace_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--workspace", required=required, metavar="ID", help="the Kantata workspace (project) id, digits"
    )


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tracker", choices=list(LINK_MODELS), metavar="TRACKER", help=", ".join(LINK_MODELS))
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="github owner/repo or owner/*, a jira project key, a gitlab project path, a linear team key",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    add_kantata_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON on stdout and nothing else")


# ---------------------------------------------------------------- running


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; whatever a user can cause ends in one or two stderr lines and an exit code."""
    try:
        with console.human_logging(TOOL):
            return int(args.link_run(args))
    except KeyboardInterrupt:
        console.note(TOOL, f"interrupted; {args.link_interrupted}")
        return console.EXIT_INTERRUPTED


@dataclass(frozen=True, slots=True)
class _Kantata:
    client: KantataClient
    base_url: str
    token_env: str


def _workspace_id(text: str | None) -> str | None:
    if text is None:
        return None
    if not _DIGITS.fullmatch(text.strip()):
        raise console.CliError(f"--workspace must be a Kantata workspace id (digits); got {text!r}")
    return text.strip().lstrip("0") or "0"


def _target(args: argparse.Namespace) -> LinkTarget:
    try:
        return link_target(args.tracker, args.source)
    except LinkError as exc:
        raise console.CliError(str(exc)) from None


def _connect(args: argparse.Namespace) -> _Kantata:
    """The client, after checking the URL and the token variable (exit 2); prints the target line."""
    problem = url_problem(args.base_url)
    if problem:
        raise console.CliError(problem, hint=SANDBOX_HINT)
    token = os.environ.get(args.token_env, "")
    if not token:
        raise console.CliError(
            f"set the Kantata token in ${args.token_env} (or choose another --token-env)", hint=SANDBOX_HINT
        )
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataError

    try:
        client = KantataClient(token, base_url=args.base_url)
    except KantataError as exc:  # the message never holds the token
        raise console.CliError(f"the Kantata token in ${args.token_env} is not usable: {exc}") from None
    _say(target_line(args.base_url))
    return _Kantata(client, args.base_url, args.token_env)


def _say(line: str) -> None:
    """A line on stderr; a closed stderr is not worth a traceback."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _calling(kantata: _Kantata, doing: str) -> Iterator[None]:
    """Turn a KantataError into one line (exit 1, or 2 for a value refused before sending) naming the URL."""
    from kantata_bridge.kantata.errors import KantataError

    try:
        yield
    except KantataError as exc:
        raise _describe(exc, kantata, doing) from None


def _describe(exc: KantataError, kantata: _Kantata, doing: str) -> console.CliError:
    from kantata_bridge.kantata.errors import (
        AuthenticationError,
        KantataConnectionError,
        KantataValueError,
        PermissionDeniedError,
        ValidationError,
    )

    where = shown_url(kantata.base_url)
    if isinstance(exc, KantataValueError):
        return console.CliError(f"cannot {doing}: {exc}")
    if isinstance(exc, KantataConnectionError):
        return console.CliError(
            f"cannot reach Kantata at {where}: {str(exc).removeprefix('Kantata ')}",
            hint="Check --base-url. " + SANDBOX_HINT,
            exit_code=console.EXIT_FAILED,
        )
    if isinstance(exc, AuthenticationError):
        return console.CliError(
            f"Kantata at {where} refused the token (401) while trying to {doing}",
            hint=f"Check the token in ${kantata.token_env}.",
            exit_code=console.EXIT_FAILED,
        )
    if isinstance(exc, PermissionDeniedError):
        return console.CliError(
            f"Kantata at {where} does not allow this token to {doing} (403)",
            hint="The token's user needs access to the workspace.",
            exit_code=console.EXIT_FAILED,
        )
    if isinstance(exc, ValidationError):
        reasons = "; ".join(
            f"{name}: {', '.join(messages)}" if name else ", ".join(messages)
            for name, messages in exc.field_errors.items()
        )
        return console.CliError(
            f"Kantata refused to {doing} (422): {reasons or exc}", exit_code=console.EXIT_FAILED
        )
    return console.CliError(
        f"cannot {doing} at {where}: {str(exc).removeprefix('Kantata ')}", exit_code=console.EXIT_FAILED
    )


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _title(title: str | None, workspace_id: str) -> str:
    """``workspace 41234567 (Acme Webapp)``, or without the title when it is unknown."""
    return f"workspace {workspace_id}" + (f" ({title})" if title else "")


# ---------------------------------------------------------------- add


def _add(args: argparse.Namespace) -> int:
    target = _target(args)
    workspace_id = _workspace_id(args.workspace)
    assert workspace_id is not None  # --workspace is required
    url = args.url if args.url is not None else source_url(target)
    if url is not None:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise console.CliError(f"--url must be an http(s) address; got {args.url!r}")
    kantata = _connect(args)
    from kantata_bridge.kantata.errors import NotFoundError
    from kantata_bridge.kantata.models import ExternalReferenceUpsert

    with kantata.client as client:
        with _calling(kantata, f"read workspace {workspace_id}"):
            try:
                workspace = client.get_workspace(workspace_id)
            except NotFoundError:
                raise console.CliError(
                    f"workspace {workspace_id} was not found in Kantata at {shown_url(kantata.base_url)}",
                    hint="Check the id: Kantata answers 404 for a workspace that does not exist, is archived, "
                    "or the token's user cannot see.",
                    exit_code=console.EXIT_FAILED,
                ) from None
        name = _title(workspace.title, workspace_id)
        with _calling(kantata, f"read the links of workspace {workspace_id}"):
            # Every reference of this service on the workspace, not only the bridge's: the upsert replaces it.
            current = list(
                client.list_external_references(
                    "Workspace", subject_id=int(workspace_id), service_name=target.tracker
                )
            )
        same = [ref for ref in current if target_of(ref) == target]
        other = [ref for ref in current if target_of(ref) != target]
        if other and not args.replace:
            shown = _ref_text(other[0])
            raise console.CliError(
                f"{name} is already linked to {shown}; a workspace holds one {target.tracker} link",
                hint=f"Add --replace to link it to {target.source} instead ({_ref_source(other[0])} then no "
                "longer routes to it).",
            )
        with _calling(kantata, f"read the workspaces linked to {target.describe()}"):
            elsewhere = [
                link for link in read_links(client, target=target) if link.workspace_id != workspace_id
            ]
        if same and args.url is None and url is None:
            url = same[0].external_link  # no address to build (Jira, GitLab, Linear): keep the one it has
        # A reference in another spelling (written by another tool) is rewritten in the bridge's: the worker's
        # lookup asks Kantata for that spelling.
        unchanged = bool(same) and (same[0].service_model_ref, same[0].external_link, same[0].status) == (
            target.ref,
            url,
            "successful",
        )
        reference_id = same[0].id if same else None
        if not unchanged:
            upsert = ExternalReferenceUpsert(
                subject_type="Workspace",
                subject_id=int(workspace_id),
                service_name=target.tracker,
                service_model=target.service_model,
                service_model_ref=target.ref,
                status="successful",
                external_link=url,
            )
            with _calling(kantata, f"link {name} to {target.describe()}"):
                reference_id = client.create_or_update_external_reference(upsert).id
    action = "unchanged" if unchanged else "updated" if same else "replaced" if other else "linked"
    routed_elsewhere = sorted(
        (link for link in elsewhere if link.routable), key=lambda x: int(x.workspace_id)
    )
    if args.json:
        _print_json(
            {
                "action": action,
                "workspace_id": workspace_id,
                "workspace_title": workspace.title,
                **_target_json(target),
                "link": url,
                "external_reference_id": reference_id,
                "replaced": _ref_source(other[0]) if other and not unchanged else None,
                "also_linked_workspaces": [link.workspace_id for link in routed_elsewhere],
            }
        )
    else:
        if action == "unchanged":
            print(f"{name} is already linked to {target.describe()}; nothing changed.")
        elif action == "replaced":
            print(
                f"Linked {name} to {target.describe()}, replacing its link to {_ref_text(other[0])} "
                f"(external reference {reference_id})."
            )
        else:
            verb = "Updated the link of" if action == "updated" else "Linked"
            print(f"{verb} {name} to {target.describe()} (external reference {reference_id}).")
    _note_others(target, workspace_id, routed_elsewhere)
    if action in ("linked", "replaced"):
        _say(
            f"Events from {target.source} reach it within {_CACHE_MINUTES} minutes (the workers cache links), "
            "unless a route in the routing document takes them first."
        )
    return console.EXIT_OK


def _note_others(target: LinkTarget, workspace_id: str, others: Sequence[WorkspaceLink]) -> None:
    if not others:
        return
    ids = sorted([workspace_id, *(link.workspace_id for link in others)], key=int)
    listed = ", ".join(
        _title(link.workspace.title if link.workspace else None, link.workspace_id) for link in others
    )
    _say(
        f"note: {target.describe()} is also linked to {listed}; its events go to the lowest id, {ids[0]}, "
        "and the worker logs the others."
    )


def _ref_source(ref: ExternalReference) -> str:
    found = target_of(ref)
    return found.source if found is not None else ref.service_model_ref


def _ref_text(ref: ExternalReference) -> str:
    found = target_of(ref)
    if found is not None:
        return found.describe()
    return f"{ref.service_name} {ref.service_model} {ref.service_model_ref} (not a link the bridge routes by)"


def _target_json(target: LinkTarget) -> dict[str, str]:
    return {"tracker": target.tracker, "service_model": target.service_model, "source": target.source}


# ---------------------------------------------------------------- list


def _list(args: argparse.Namespace) -> int:
    workspace_id = _workspace_id(args.workspace)
    kantata = _connect(args)
    links: list[WorkspaceLink] = []
    with kantata.client as client:
        if workspace_id is not None:
            with _calling(kantata, f"read the links of workspace {workspace_id}"):
                links = read_links(client, tracker=args.tracker, workspace_id=workspace_id)
        else:
            for tracker in [args.tracker] if args.tracker else list(LINK_MODELS):
                with _calling(kantata, f"read the {tracker} workspace links"):
                    links += read_links(client, tracker=tracker)
    if args.json:
        _print_json([_link_json(link) for link in links])
    elif links:
        _print_table(links)
    if not links:
        _say("No workspace links found.")
        return console.EXIT_OK
    if not all(link.routable for link in links):
        _say("Links marked (archived) or (not shown by Kantata) route nothing: Kantata hides that workspace.")
    by_target: dict[LinkTarget, list[WorkspaceLink]] = {}
    for link in links:
        if link.routable:
            by_target.setdefault(link.target, []).append(link)
    for target, linked in by_target.items():
        if len(linked) > 1:
            _say(
                f"note: {target.describe()} is linked to {len(linked)} workspaces; its events go to the lowest "
                f"id, {linked[0].workspace_id}."
            )
    return console.EXIT_OK


def _shown_title(link: WorkspaceLink) -> str:
    if link.workspace is None:
        return "(not shown by Kantata)"
    if link.workspace.archived:
        return f"{link.workspace.title} (archived)"
    return link.workspace.title


def _link_json(link: WorkspaceLink) -> dict[str, Any]:
    return {
        "workspace_id": link.workspace_id,
        "workspace_title": link.workspace.title if link.workspace is not None else None,
        **_target_json(link.target),
        "link": link.external_link,
        "external_reference_id": link.reference_id,
        "routes": link.routable,
    }


def _print_table(links: Sequence[WorkspaceLink]) -> None:
    rows = [("workspace", "title", "tracker", "source", "link")]
    rows += [
        (
            link.workspace_id,
            _shown_title(link),
            link.target.tracker,
            link.target.source,
            link.external_link or "",
        )
        for link in links
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*cells, row[-1]]).rstrip())


# ---------------------------------------------------------------- remove


def _remove(args: argparse.Namespace) -> int:
    target = _target(args)
    workspace_id = _workspace_id(args.workspace)
    assert workspace_id is not None  # --workspace is required
    kantata = _connect(args)
    with kantata.client as client:
        with _calling(kantata, f"read the links of workspace {workspace_id}"):
            current = list(
                client.list_external_references(
                    "Workspace",
                    subject_id=int(workspace_id),
                    service_name=target.tracker,
                    include=("subject",),
                )
            )
        found = [ref for ref in current if target_of(ref) == target]
        workspace = next((ref.workspace for ref in current if ref.workspace is not None), None)
        name = _title(workspace.title if workspace else None, workspace_id)
        if not found:
            hint = (
                f"It is linked to {_ref_text(current[0])}."
                if current
                else f"See its links: kantata-bridge link list --workspace {workspace_id}"
            )
            raise console.CliError(
                f"nothing to remove: {name} has no link to {target.describe()}",
                hint=hint,
                exit_code=console.EXIT_FAILED,
            )
        with _calling(kantata, f"remove the link of {name} to {target.describe()}"):
            for ref in found:
                client.delete_external_reference(ref.id)
    if args.json:
        _print_json(
            {
                "action": "removed",
                "workspace_id": workspace_id,
                "workspace_title": workspace.title if workspace else None,
                **_target_json(target),
                "external_reference_id": found[0].id,
            }
        )
    else:
        print(f"Removed the link of {name} to {target.describe()} (external reference {found[0].id}).")
    _say(
        f"Workers that looked the link up in the last {_CACHE_MINUTES} minutes may still route {target.source} "
        "there until their cache expires."
    )
    return console.EXIT_OK
