"""Turn GitLab work item statuses or scoped workflow labels into a desired task status set.

Two exports are understood (docs/catalog.md has the exact API calls):

- **Work item statuses** (GitLab Premium/Ultimate, configured on the top-level group): the JSON answer of the
  GraphQL query ``namespace(fullPath: …) { lifecycles { nodes { name statuses { name category } } } }``.
  Statuses keep the lifecycle's order; categories map triage and to_do → not started, in_progress → started,
  done and cancelled → completed.
- **Scoped labels**: the JSON list ``GET /projects/:id/labels`` or ``GET /groups/:id/labels`` returns. Labels
  starting with the prefix (``workflow::`` by default) become statuses named by the rest of the label
  (``workflow::in review`` → ``in review``), exactly as the worker reports them. Labels carry no category,
  so name rules decide it (needs info, then completed, then started; anything else is not started), and the
  statuses are ordered by category, keeping the export's order within one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from kantata_bridge.catalog.config import DesiredSet, DesiredStatus, parse_config, status_key
from kantata_bridge.catalog.jira import DEFAULT_NEEDS_INFO_RULES, JiraExportError, NeedsInfoRules
from kantata_bridge.kantata.models import StatusCategory

DEFAULT_LABEL_PREFIX: Final = "workflow::"
STATUS_CATEGORY_MAP: Final[Mapping[str, StatusCategory]] = {
    "triage": "not started",
    "to_do": "not started",
    "in_progress": "started",
    "done": "completed",
    "cancelled": "completed",
    "canceled": "completed",
}
DEFAULT_STARTED_RULES: Final[tuple[str, ...]] = (
    "in progress",
    "doing",
    "review",
    "in development",
    "testing",
    "/\\bqa\\b/",
    "verification",
)
DEFAULT_COMPLETED_RULES: Final[tuple[str, ...]] = (
    "done",
    "closed",
    "complete",
    "resolved",
    "released",
    "deployed",
    "won't do",
    "wontfix",
    "cancel",
)
_CATEGORY_ORDER: Final[Mapping[StatusCategory, int]] = {
    "not started": 0,
    "started": 1,
    "needs info": 2,
    "completed": 3,
}


class GitLabExportError(ValueError):
    """The export is neither a lifecycles GraphQL answer nor a labels list, or a rule or choice is bad."""


def set_from_gitlab_export(
    export: Any,
    *,
    set_name: str,
    workflow: str | None = None,
    label_prefix: str = DEFAULT_LABEL_PREFIX,
    lifecycle: str | None = None,
    needs_info: Sequence[str] = DEFAULT_NEEDS_INFO_RULES,
    started: Sequence[str] = DEFAULT_STARTED_RULES,
    completed: Sequence[str] = DEFAULT_COMPLETED_RULES,
) -> DesiredSet:
    """A desired set from a GitLab export (work item statuses or labels), validated like a loaded configuration.

    ``workflow`` (informational) is the group or project path. Raises GitLabExportError for a malformed
    export, an unknown lifecycle or a bad rule, CatalogConfigError for an invalid set name.
    """
    needs_info_rules = _rules(needs_info)
    if _is_graphql(export):
        statuses = _from_lifecycles(export, lifecycle, needs_info_rules)
    elif isinstance(export, list):
        statuses = _from_labels(export, label_prefix, needs_info_rules, _rules(completed), _rules(started))
    else:
        raise GitLabExportError(
            "expected the JSON list GET /projects/:id/labels (or /groups/:id/labels) returns, or the answer "
            "of the lifecycles GraphQL query (data.namespace.lifecycles.nodes[])"
        )
    raw: dict[str, Any] = {
        "name": set_name,
        "tracker": "gitlab",
        "statuses": [{"name": s.name, "category": s.category} for s in statuses],
    }
    if workflow:
        raw["workflow"] = workflow
    return parse_config({"version": 1, "sets": [raw]}).sets[0]


def _rules(rules: Sequence[str]) -> NeedsInfoRules:
    try:
        return NeedsInfoRules.parse(rules)
    except JiraExportError as exc:
        raise GitLabExportError(str(exc).replace("needs-info rule", "rule")) from None


def _is_graphql(export: Any) -> bool:
    return isinstance(export, Mapping) and ("data" in export or "errors" in export)


def _from_lifecycles(
    export: Mapping[str, Any], lifecycle: str | None, needs_info: NeedsInfoRules
) -> tuple[DesiredStatus, ...]:
    errors = export.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        message = first.get("message") if isinstance(first, Mapping) else None
        raise GitLabExportError(f"the export is a GraphQL error: {message or 'no message'}")
    data = export.get("data")
    namespace = data.get("namespace") if isinstance(data, Mapping) else None
    lifecycles = namespace.get("lifecycles") if isinstance(namespace, Mapping) else None
    nodes = lifecycles.get("nodes") if isinstance(lifecycles, Mapping) else lifecycles
    if not isinstance(nodes, list) or not nodes:
        raise GitLabExportError(
            "the GraphQL answer has no data.namespace.lifecycles.nodes[] (work item statuses need GitLab "
            "Premium; use the labels export otherwise)"
        )
    names = [n.get("name") if isinstance(n, Mapping) else None for n in nodes]
    if lifecycle is not None:
        chosen = [
            n
            for n, name in zip(nodes, names, strict=True)
            if isinstance(name, str) and name.casefold() == lifecycle.casefold()
        ]
        if not chosen:
            raise GitLabExportError(
                f"no lifecycle named {lifecycle!r} (lifecycles: {', '.join(map(str, names))})"
            )
        node = chosen[0]
    elif len(nodes) > 1:
        raise GitLabExportError(
            f"the namespace has several lifecycles ({', '.join(map(str, names))}); give --lifecycle"
        )
    else:
        node = nodes[0]
    statuses = node.get("statuses") if isinstance(node, Mapping) else None
    if isinstance(statuses, Mapping):
        statuses = statuses.get("nodes")
    if not isinstance(statuses, list):
        raise GitLabExportError("the lifecycle has no 'statuses' list")
    out: list[DesiredStatus] = []
    seen: set[str] = set()
    for i, status in enumerate(statuses):
        where = f"statuses[{i}]"
        if not isinstance(status, Mapping):
            raise GitLabExportError(f"{where}: must be an object with 'name' and 'category'")
        name = status.get("name")
        if not isinstance(name, str) or not name.strip():
            raise GitLabExportError(f"{where}.name: must be a non-empty string; got {name!r}")
        raw_category = status.get("category")
        category = STATUS_CATEGORY_MAP.get(raw_category.lower()) if isinstance(raw_category, str) else None
        if category is None:
            raise GitLabExportError(
                f"{where}.category: must be one of triage, to_do, in_progress, done, cancelled; got {raw_category!r}"
            )
        if needs_info.matches(name):
            category = "needs info"
        if status_key(name) not in seen:
            seen.add(status_key(name))
            out.append(DesiredStatus(name=name.strip(), category=category))
    if not out:
        raise GitLabExportError("the lifecycle has no statuses")
    return tuple(out)


def _from_labels(
    labels: list[Any],
    prefix: str,
    needs_info: NeedsInfoRules,
    completed: NeedsInfoRules,
    started: NeedsInfoRules,
) -> tuple[DesiredStatus, ...]:
    if not prefix.strip():
        raise GitLabExportError("the label prefix must not be empty (e.g. workflow::)")
    found: list[tuple[int, int, DesiredStatus]] = []
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if not isinstance(label, Mapping):
            raise GitLabExportError(f"[{i}]: a label must be an object with 'name'")
        title = label.get("name", label.get("title"))
        if not isinstance(title, str):
            raise GitLabExportError(f"[{i}].name: must be a string; got {title!r}")
        if not title.casefold().startswith(prefix.casefold()):
            continue
        name = title[len(prefix) :].strip()
        if not name or status_key(name) in seen:
            continue
        seen.add(status_key(name))
        category: StatusCategory
        if needs_info.matches(name):
            category = "needs info"
        elif completed.matches(name):
            category = "completed"
        elif started.matches(name):
            category = "started"
        else:
            category = "not started"
        found.append((_CATEGORY_ORDER[category], i, DesiredStatus(name=name, category=category)))
    if not found:
        raise GitLabExportError(f"no label in the export starts with {prefix!r}")
    return tuple(status for _, _, status in sorted(found, key=lambda item: item[:2]))
