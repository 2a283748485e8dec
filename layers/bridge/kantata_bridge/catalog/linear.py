"""Turn a Linear team's workflow states (a ``workflowStates`` GraphQL answer) into a desired task status set.

The export is the JSON Linear's GraphQL API answers to (see docs/catalog.md for the exact query)::

    query { workflowStates(filter: {team: {key: {eq: "ENG"}}}, first: 250) {
      nodes { name type position team { key } } } }

States are ordered as Linear shows them: by type (triage, backlog, unstarted, started, completed, canceled),
then by ``position``. Categories map from the type: triage, backlog and unstarted → not started; started →
started; completed and canceled → completed; a name matching a needs-info rule (as for Jira) → needs info.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from kantata_bridge.catalog.config import DesiredSet, DesiredStatus, parse_config, status_key
from kantata_bridge.catalog.jira import DEFAULT_NEEDS_INFO_RULES, JiraExportError, NeedsInfoRules
from kantata_bridge.kantata.models import StatusCategory

# Linear's state types in the order its UI lists them, with the Kantata category each becomes.
LINEAR_TYPE_MAP: Final[Mapping[str, StatusCategory]] = {
    "triage": "not started",
    "backlog": "not started",
    "unstarted": "not started",
    "started": "started",
    "completed": "completed",
    "canceled": "completed",
}
_TYPE_ORDER: Final = {state_type: i for i, state_type in enumerate(LINEAR_TYPE_MAP)}


class LinearExportError(ValueError):
    """The export is not a ``workflowStates`` answer, holds several teams without --team, or a rule is bad."""


def states_from_linear_export(export: Any, *, team: str | None = None) -> list[Mapping[str, Any]]:
    """The workflow state objects of the export (of ``team`` when given). Raises LinearExportError."""
    nodes = _nodes(export)
    states = []
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            raise LinearExportError(f"nodes[{i}]: must be an object with 'name' and 'type'")
        states.append(node)
    teams = sorted({key for key in (_team_key(s) for s in states) if key})
    if team is not None:
        states = [s for s in states if (_team_key(s) or "").casefold() == team.casefold()]
        if not states:
            found = ", ".join(teams) or "none named"
            raise LinearExportError(f"the export has no states of team {team!r} (teams: {found})")
    elif len(teams) > 1:
        raise LinearExportError(
            f"the export holds the states of several teams ({', '.join(teams)}); give --team"
        )
    return states


def statuses_from_linear_states(
    states: Sequence[Mapping[str, Any]], rules: NeedsInfoRules
) -> tuple[DesiredStatus, ...]:
    """The desired statuses, in Linear's order, deduplicated by name. Raises LinearExportError."""
    checked: list[tuple[int, float, int, str, StatusCategory]] = []
    for i, state in enumerate(states):
        name = state.get("name")
        if not isinstance(name, str) or not name.strip():
            raise LinearExportError(f"nodes[{i}].name: must be a non-empty string; got {name!r}")
        state_type = state.get("type")
        category = LINEAR_TYPE_MAP.get(state_type) if isinstance(state_type, str) else None
        if category is None:
            raise LinearExportError(
                f"nodes[{i}].type: must be one of {', '.join(LINEAR_TYPE_MAP)}; got {state_type!r}"
            )
        if rules.matches(name):
            category = "needs info"
        checked.append((_TYPE_ORDER[str(state_type)], _position(state), i, name.strip(), category))
    out: list[DesiredStatus] = []
    seen: set[str] = set()
    for _, _, _, name, category in sorted(checked):
        if status_key(name) not in seen:
            seen.add(status_key(name))
            out.append(DesiredStatus(name=name, category=category))
    if not out:
        raise LinearExportError("the export has no workflow states")
    return tuple(out)


def set_from_linear_export(
    export: Any,
    *,
    set_name: str,
    team: str | None = None,
    needs_info: Sequence[str] = DEFAULT_NEEDS_INFO_RULES,
) -> DesiredSet:
    """A desired set for one Linear team, validated like a loaded configuration.

    Raises LinearExportError for a malformed export or rule, CatalogConfigError for an invalid set name.
    """
    try:
        rules = NeedsInfoRules.parse(needs_info)
    except JiraExportError as exc:
        raise LinearExportError(str(exc)) from None
    states = states_from_linear_export(export, team=team)
    statuses = statuses_from_linear_states(states, rules)
    raw: dict[str, Any] = {
        "name": set_name,
        "tracker": "linear",
        "statuses": [{"name": s.name, "category": s.category} for s in statuses],
    }
    workflow = team or next((key for key in (_team_key(s) for s in states) if key), None)
    if workflow:
        raw["workflow"] = workflow.upper()
    return parse_config({"version": 1, "sets": [raw]}).sets[0]


def _nodes(export: Any) -> list[Any]:
    if isinstance(export, Mapping) and isinstance(export.get("errors"), list) and export["errors"]:
        first = export["errors"][0]
        message = first.get("message") if isinstance(first, Mapping) else None
        raise LinearExportError(f"the export is a GraphQL error: {message or 'no message'}")
    doc = export
    for key in ("data", "workflowStates"):
        if isinstance(doc, Mapping) and key in doc:
            doc = doc[key]
    if isinstance(doc, Mapping):
        doc = doc.get("nodes")
    if not isinstance(doc, list):
        raise LinearExportError(
            "expected the JSON answer of a workflowStates GraphQL query (data.workflowStates.nodes[])"
        )
    return doc


def _position(state: Mapping[str, Any]) -> float:
    position = state.get("position")
    if isinstance(position, bool) or not isinstance(position, int | float):
        return 0.0
    try:
        value = float(position)
    except OverflowError:
        return 0.0
    return value if value == value else 0.0  # NaN sorts nowhere: treat it as unset


def _team_key(state: Mapping[str, Any]) -> str | None:
    team = state.get("team")
    key = team.get("key") if isinstance(team, Mapping) else None
    return key if isinstance(key, str) and key else None
