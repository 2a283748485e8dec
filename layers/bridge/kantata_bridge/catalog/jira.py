"""Turn a Jira workflow-statuses export into a desired task status set.

The export is what ``GET /rest/api/3/project/{key}/statuses`` returns: a list of issue types, each with
``statuses[]`` carrying ``name`` and ``statusCategory.key`` (``new`` / ``indeterminate`` / ``done``).
Statuses are deduplicated by name (case-insensitively) keeping the first-seen order, and mapped:
``new`` → not started, ``indeterminate`` → started, ``done`` → completed, except that a name matching one of
the needs-info rules becomes ``needs info``. A rule is a case-insensitive substring (``waiting for``) or,
written ``/pattern/``, a case-insensitive regular expression (``/^blocked\\b/``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kantata_bridge.catalog.config import DesiredSet, DesiredStatus, parse_config, status_key
from kantata_bridge.kantata.models import StatusCategory

JIRA_CATEGORY_MAP: Final[Mapping[str, StatusCategory]] = {
    "new": "not started",
    "indeterminate": "started",
    "done": "completed",
}
DEFAULT_NEEDS_INFO_RULES: Final[tuple[str, ...]] = ("waiting for", "blocked", "needs info", "on hold")


class JiraExportError(ValueError):
    """The Jira export is not the shape ``GET /rest/api/3/project/{key}/statuses`` returns, or a rule is bad."""


@dataclass(frozen=True, slots=True)
class NeedsInfoRules:
    """Name rules that send a Jira status to Kantata's ``needs info`` category."""

    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def parse(cls, rules: Sequence[str]) -> NeedsInfoRules:
        """Compile rules: ``/regex/`` or a plain substring. JiraExportError names a rule that does not compile."""
        compiled = []
        for rule in rules:
            if not isinstance(rule, str) or not rule.strip():
                raise JiraExportError(f"needs-info rule must be a non-empty string; got {rule!r}")
            if len(rule) >= 2 and rule.startswith("/") and rule.endswith("/"):
                try:
                    compiled.append(re.compile(rule[1:-1], re.IGNORECASE))
                except re.error as exc:
                    raise JiraExportError(f"needs-info rule {rule!r} is not a valid regex: {exc}") from None
            else:
                compiled.append(re.compile(re.escape(rule.strip()), re.IGNORECASE))
        return cls(tuple(compiled))

    def matches(self, name: str) -> bool:
        return any(p.search(name) for p in self.patterns)


def statuses_from_jira_export(export: Any, rules: NeedsInfoRules) -> tuple[DesiredStatus, ...]:
    """The desired statuses for a Jira project, in first-seen order, deduplicated by name.

    Raises JiraExportError when the export is not a list of issue types with ``statuses[]``, a status has no
    name, or its ``statusCategory.key`` is not new/indeterminate/done (and no needs-info rule matches it).
    """
    if isinstance(export, Mapping) and isinstance(export.get("statuses"), list):
        export = [export]  # one issue type on its own: accept it rather than make the user wrap it
    if not isinstance(export, list):
        raise JiraExportError(
            "expected the JSON list that GET /rest/api/3/project/{key}/statuses returns (issue types with statuses[])"
        )
    out: list[DesiredStatus] = []
    seen: set[str] = set()
    for i, issue_type in enumerate(export):
        where = f"[{i}]"
        if not isinstance(issue_type, Mapping) or not isinstance(issue_type.get("statuses"), list):
            raise JiraExportError(f"{where}: an issue type must have a 'statuses' list")
        for j, status in enumerate(issue_type["statuses"]):
            key = f"{where}.statuses[{j}]"
            if not isinstance(status, Mapping):
                raise JiraExportError(f"{key}: must be an object with 'name' and 'statusCategory'")
            name = status.get("name")
            if not isinstance(name, str) or not name.strip():
                raise JiraExportError(f"{key}.name: must be a non-empty string; got {name!r}")
            name = name.strip()
            if status_key(name) in seen:
                continue
            category: StatusCategory | None
            if rules.matches(name):
                category = "needs info"
            else:
                raw_category = status.get("statusCategory")
                category_key = raw_category.get("key") if isinstance(raw_category, Mapping) else None
                category = JIRA_CATEGORY_MAP.get(str(category_key)) if category_key is not None else None
                if category is None:
                    raise JiraExportError(
                        f"{key}.statusCategory.key: must be one of new, indeterminate, done; got {category_key!r}"
                    )
            seen.add(status_key(name))
            out.append(DesiredStatus(name=name, category=category))
    if not out:
        raise JiraExportError("the export has no statuses")
    return tuple(out)


def set_from_jira_export(
    export: Any,
    *,
    set_name: str,
    project: str | None = None,
    needs_info: Sequence[str] = DEFAULT_NEEDS_INFO_RULES,
) -> DesiredSet:
    """A desired set for one Jira project, validated like a loaded configuration.

    Raises JiraExportError for a malformed export or rule, CatalogConfigError for an invalid set name.
    """
    statuses = statuses_from_jira_export(export, NeedsInfoRules.parse(needs_info))
    raw: dict[str, Any] = {
        "name": set_name,
        "tracker": "jira",
        "statuses": [{"name": s.name, "category": s.category} for s in statuses],
    }
    if project:
        raw["workflow"] = project
    return parse_config({"version": 1, "sets": [raw]}).sets[0]
