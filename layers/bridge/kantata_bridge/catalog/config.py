"""The declarative status catalog: which Kantata task status sets should exist, with which statuses.

A catalog file (YAML or JSON) looks like::

    version: 1
    sets:
      - name: "PROJ workflow"          # the Kantata task status set's name (matched exactly)
        tracker: jira                  # jira | github (informational: where the statuses come from)
        workflow: PROJ                 # Jira project key or GitHub owner/repo (informational)
        previous_names: ["Old name"]   # optional: an existing set with one of these names is renamed
        workspaces: [101, 102]         # optional: Kantata workspace ids to use this set
        account_default: false         # optional: make it the default set for new projects
        statuses:                      # in the order wanted in Kantata
          - {name: To Do, category: not started}
          - {name: In Progress, category: started, previous_names: [Doing]}
          - {name: Done, category: completed}

Everything is checked on load; ``CatalogConfigError`` lists every problem, each naming its key
(``sets[0].statuses[2].category``) and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from kantata_bridge.kantata.models import STATUS_CATEGORIES, StatusCategory

TRACKERS: Final[tuple[str, ...]] = ("jira", "github", "gitlab", "linear")
_SET_KEYS: Final = frozenset(
    {"name", "tracker", "workflow", "previous_names", "workspaces", "account_default", "statuses"}
)
_STATUS_KEYS: Final = frozenset({"name", "category", "previous_names"})
# Kantata does not document a length limit; this keeps an obviously broken value (a pasted paragraph) out.
MAX_NAME_LENGTH: Final = 255


class CatalogConfigError(ValueError):
    """The catalog configuration is invalid. ``problems`` lists each one as ``key: why``."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid catalog configuration{where}:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True, slots=True)
class DesiredStatus:
    """One status wanted in a set: its name, its Kantata category, and names it used to have."""

    name: str
    category: StatusCategory
    previous_names: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return status_key(self.name)


@dataclass(frozen=True, slots=True)
class DesiredSet:
    """One task status set wanted in Kantata, mirroring one tracker workflow."""

    name: str
    statuses: tuple[DesiredStatus, ...]
    tracker: str | None = None
    workflow: str | None = None
    previous_names: tuple[str, ...] = ()
    workspaces: tuple[int, ...] = ()
    account_default: bool = False


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """The whole catalog: the sets, in file order."""

    sets: tuple[DesiredSet, ...] = field(default=())


def status_key(name: str) -> str:
    """How status names are compared: case-insensitively, ignoring surrounding spaces."""
    return name.strip().casefold()


def load_config(path: str | Path) -> CatalogConfig:
    """Read and validate a catalog file (YAML, or JSON which is YAML too).

    Raises CatalogConfigError when the file cannot be read or parsed or its content is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogConfigError([f"cannot read the file: {exc.strerror or exc}"], source=str(path)) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start}); save the catalog as UTF-8"
        raise CatalogConfigError([problem], source=str(path)) from None
    return parse_config_text(text, source=str(path))


def parse_config_text(text: str, *, source: str | None = None) -> CatalogConfig:
    """Parse YAML/JSON text and validate it. Raises CatalogConfigError (with the YAML error's position)."""
    import yaml  # lazy: only the catalog needs YAML

    try:
        data = yaml.safe_load(text)
    except RecursionError:  # PyYAML builds nested collections recursively
        raise CatalogConfigError(["nested too deeply to be a catalog"], source=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise CatalogConfigError([f"{where}{problem}"], source=source) from None
    return parse_config(data, source=source)


def parse_config(data: Any, *, source: str | None = None) -> CatalogConfig:
    """Validate already-decoded configuration data. Raises CatalogConfigError listing every problem."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise CatalogConfigError(["the top level must be a mapping with a 'sets' list"], source=source)
    unknown = sorted(set(map(str, data)) - {"version", "sets"})
    if unknown:
        problems.append(f"{', '.join(unknown)}: unknown key (expected 'version', 'sets')")
    version = data.get("version", 1)
    if version != 1:
        problems.append(f"version: only version 1 is supported; got {version!r}")
    raw_sets = data.get("sets")
    if not isinstance(raw_sets, list) or not raw_sets:
        problems.append("sets: must be a non-empty list of task status sets")
        raise CatalogConfigError(problems, source=source)

    sets: list[DesiredSet] = []
    claims: list[_Claims] = []
    for index, raw in enumerate(raw_sets):
        parsed, claim = _parse_set(raw, f"sets[{index}]", problems)
        claims.append(claim)
        if parsed is not None:
            sets.append(parsed)
    # Across sets, from what each set claims even when the rest of it is invalid: every problem at once,
    # each under the key of the set it is in (the position in the file, not among the valid sets).
    problems.extend(_clashes(claims))
    if problems:
        raise CatalogConfigError(problems, source=source)
    return CatalogConfig(sets=tuple(sets))


@dataclass(frozen=True, slots=True)
class _Claims:
    """What one set claims across the catalog (the parts of it that are valid), for the clash checks."""

    names: tuple[tuple[str, str], ...] = ()  # (key, name): its name and previous names
    account_default: bool = False
    workspaces: tuple[int, ...] = ()


def _clashes(claims: Sequence[_Claims]) -> list[str]:
    """Names, the account default and workspaces claimed by more than one set, each under its own key."""
    problems: list[str] = []
    seen_names: dict[str, int] = {}
    for index, claim in enumerate(claims):
        for key, name in claim.names:
            if name in seen_names and seen_names[name] != index:
                problems.append(
                    f"{key}: {name!r} is already used by sets[{seen_names[name]}] "
                    "(set names and previous_names must be unique across the catalog)"
                )
            seen_names.setdefault(name, index)
    defaults = [i for i, c in enumerate(claims) if c.account_default]
    if len(defaults) > 1:
        problems.extend(
            f"sets[{i}].account_default: only one set can be the account default (sets[{defaults[0]}] already is)"
            for i in defaults[1:]
        )
    claimed: dict[int, int] = {}
    for index, claim in enumerate(claims):
        for workspace in claim.workspaces:
            if workspace in claimed and claimed[workspace] != index:
                problems.append(
                    f"sets[{index}].workspaces: workspace {workspace} is also given to sets[{claimed[workspace]}]"
                )
            claimed.setdefault(workspace, index)
    return problems


def _parse_name(value: Any, key: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{key}: must be a non-empty string; got {value!r}")
        return None
    if len(value) > MAX_NAME_LENGTH:
        problems.append(f"{key}: must be at most {MAX_NAME_LENGTH} characters; got {len(value)}")
        return None
    if value != value.strip():
        problems.append(f"{key}: must not start or end with spaces; got {value!r}")
        return None
    return value


def _parse_names(value: Any, key: str, problems: list[str]) -> tuple[str, ...]:
    return tuple(name for _, name in _parse_keyed_names(value, key, problems))


def _parse_keyed_names(value: Any, key: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """The valid names of a list, each with its key (``key[i]``)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"{key}: must be a list of names; got {value!r}")
        return ()
    out = []
    for i, item in enumerate(value):
        name = _parse_name(item, f"{key}[{i}]", problems)
        if name is not None:
            out.append((f"{key}[{i}]", name))
    return tuple(out)


def _check_keys(raw: Mapping[Any, Any], allowed: frozenset[str], key: str, problems: list[str]) -> None:
    unknown = sorted(set(map(str, raw)) - allowed)
    if unknown:
        problems.append(f"{key}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _parse_set(raw: Any, key: str, problems: list[str]) -> tuple[DesiredSet | None, _Claims]:
    """The set (None if it is invalid) and what it claims across the catalog (even if it is invalid)."""
    if not isinstance(raw, Mapping):
        problems.append(f"{key}: must be a mapping with 'name' and 'statuses'; got {raw!r}")
        return None, _Claims()
    _check_keys(raw, _SET_KEYS, key, problems)
    name = _parse_name(raw.get("name"), f"{key}.name", problems)
    tracker = raw.get("tracker")
    if tracker is not None and tracker not in TRACKERS:
        problems.append(f"{key}.tracker: must be one of {', '.join(TRACKERS)}; got {tracker!r}")
    workflow = raw.get("workflow")
    if workflow is not None and not isinstance(workflow, str | int):
        problems.append(f"{key}.workflow: must be a string (Jira project key or GitHub owner/repo)")
    keyed_previous = _parse_keyed_names(raw.get("previous_names"), f"{key}.previous_names", problems)
    previous = tuple(p for _, p in keyed_previous)
    if name is not None and name in previous:
        problems.append(f"{key}.previous_names: contains the set's own name {name!r}")

    workspaces: list[int] = []
    raw_workspaces = raw.get("workspaces", [])
    if not isinstance(raw_workspaces, list):
        problems.append(f"{key}.workspaces: must be a list of Kantata workspace ids; got {raw_workspaces!r}")
    else:
        for i, item in enumerate(raw_workspaces):
            workspace = _workspace_id(item)
            if workspace is None:
                problems.append(
                    f"{key}.workspaces[{i}]: must be a positive integer workspace id; got {item!r}"
                )
            elif workspace in workspaces:
                problems.append(f"{key}.workspaces[{i}]: workspace {workspace} is listed twice")
            else:
                workspaces.append(workspace)

    account_default = raw.get("account_default", False)
    if not isinstance(account_default, bool):
        problems.append(f"{key}.account_default: must be true or false; got {account_default!r}")
        account_default = False

    statuses = _parse_statuses(raw.get("statuses"), f"{key}.statuses", problems)
    names = ((f"{key}.name", name),) if name is not None else ()
    claims = _Claims(
        names=names + tuple((k, p) for k, p in keyed_previous if p != name),
        account_default=account_default,
        workspaces=tuple(workspaces),
    )
    if name is None or statuses is None:
        return None, claims
    desired = DesiredSet(
        name=name,
        statuses=statuses,
        tracker=cast(str | None, tracker) if tracker in TRACKERS else None,
        workflow=str(workflow) if isinstance(workflow, str | int) else None,
        previous_names=previous,
        workspaces=tuple(workspaces),
        account_default=account_default,
    )
    return desired, claims


def _workspace_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def _parse_statuses(raw: Any, key: str, problems: list[str]) -> tuple[DesiredStatus, ...] | None:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{key}: must be a non-empty list of {{name, category}}")
        return None
    out: list[DesiredStatus] = []
    owner: dict[str, str] = {}  # status key -> the config key that claimed it
    count = len(problems)
    for index, item in enumerate(raw):
        item_key = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{item_key}: must be a mapping with 'name' and 'category'; got {item!r}")
            continue
        _check_keys(item, _STATUS_KEYS, item_key, problems)
        name = _parse_name(item.get("name"), f"{item_key}.name", problems)
        category = item.get("category")
        if category not in STATUS_CATEGORIES:
            problems.append(
                f"{item_key}.category: must be one of {', '.join(repr(c) for c in STATUS_CATEGORIES)}; "
                f"got {category!r}"
            )
        previous = _parse_names(item.get("previous_names"), f"{item_key}.previous_names", problems)
        if name is None:
            continue
        # Kantata status names are unique within a set; compare case-insensitively, as the planner matches.
        for label, candidate in (
            (f"{item_key}.name", name),
            *((f"{item_key}.previous_names", p) for p in previous),
        ):
            k = status_key(candidate)
            if k in owner:
                problems.append(
                    f"{label}: {candidate!r} clashes (case-insensitively) with {owner[k]} in the same set"
                )
            else:
                owner[k] = label
        if category in STATUS_CATEGORIES:
            out.append(DesiredStatus(name, cast(StatusCategory, category), previous))
    if len(problems) > count:
        return None
    return tuple(out)


def dump_config(config: CatalogConfig) -> dict[str, Any]:
    """The configuration as plain data, in the file format (for printing generated configuration)."""
    sets = []
    for desired in config.sets:
        item: dict[str, Any] = {"name": desired.name}
        if desired.tracker:
            item["tracker"] = desired.tracker
        if desired.workflow:
            item["workflow"] = desired.workflow
        if desired.previous_names:
            item["previous_names"] = list(desired.previous_names)
        if desired.workspaces:
            item["workspaces"] = list(desired.workspaces)
        if desired.account_default:
            item["account_default"] = True
        statuses = []
        for status in desired.statuses:
            entry: dict[str, Any] = {"name": status.name, "category": status.category}
            if status.previous_names:
                entry["previous_names"] = list(status.previous_names)
            statuses.append(entry)
        item["statuses"] = statuses
        sets.append(item)
    return {"version": 1, "sets": sets}


def render_config_yaml(config: CatalogConfig) -> str:
    """The configuration as YAML text that ``parse_config_text`` reads back to an equal configuration."""
    import yaml

    return str(yaml.safe_dump(dump_config(config), sort_keys=False, allow_unicode=True, width=110))
