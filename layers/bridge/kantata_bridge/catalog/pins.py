"""Pins: the Kantata ids each configured set and status had after the last apply.

Kantata's names are what the catalog matches on, but a name changed in Kantata (someone renamed
``QA`` to ``Testing`` in the UI) cannot be told apart from a new status by looking at names alone. With the
ids pinned by the last apply, the planner recognises the renamed status and renames it back, so the tasks
using it keep their status, instead of adding ``QA`` again and leaving ``Testing`` as an extra.

Pins are a hint, never the truth: an id that is gone from Kantata is ignored, and Kantata is re-read on
every run. The CLI keeps them in a JSON file, the Lambda in an SSM parameter (both optional).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kantata_bridge.catalog.config import CatalogConfig, status_key
from kantata_bridge.kantata.models import TaskStatusSet

PINS_VERSION = 1


class PinsError(ValueError):
    """The stored pins are not readable (the caller plans without them and says so)."""


@dataclass(frozen=True, slots=True)
class SetPins:
    """A set's Kantata id and, per desired status (by name key), its Kantata status id."""

    set_id: str
    statuses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CatalogPins:
    """Pins for every configured set, by set name."""

    sets: Mapping[str, SetPins] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact JSON (it has to fit an SSM parameter)."""
        data = {
            "version": PINS_VERSION,
            "sets": {
                name: {"id": p.set_id, "statuses": dict(p.statuses)} for name, p in sorted(self.sets.items())
            },
        }
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | None) -> CatalogPins:
        """Read pins written by ``to_json``. Empty text gives no pins; PinsError for anything unreadable."""
        if text is None or not str(text).strip():
            return cls()
        try:
            data: Any = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PinsError(f"the pins are not JSON: {exc}") from None
        except RecursionError:
            raise PinsError("the pins are nested too deeply to be pins") from None
        if not isinstance(data, Mapping) or data.get("version") != PINS_VERSION:
            raise PinsError(f"the pins must be an object with version {PINS_VERSION}")
        raw_sets = data.get("sets")
        if not isinstance(raw_sets, Mapping):
            raise PinsError("the pins have no 'sets' object")
        sets: dict[str, SetPins] = {}
        for name, raw in raw_sets.items():
            if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
                raise PinsError(f"the pins for set {name!r} have no 'id'")
            statuses = raw.get("statuses", {})
            if not isinstance(statuses, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in statuses.items()
            ):
                raise PinsError(f"the pins for set {name!r} have a bad 'statuses' object")
            sets[str(name)] = SetPins(raw["id"], dict(statuses))
        return cls(sets)


def sets_by_name(current_sets: Sequence[TaskStatusSet]) -> dict[str, list[TaskStatusSet]]:
    """Kantata's sets grouped by exact name (Kantata does not keep set names unique)."""
    by_name: dict[str, list[TaskStatusSet]] = {}
    for current in current_sets:
        by_name.setdefault(current.name, []).append(current)
    return by_name


def pins_from_sets(config: CatalogConfig, current_sets: Sequence[TaskStatusSet]) -> CatalogPins:
    """Pins for the configured sets as Kantata has them now (a set whose name is ambiguous is left out)."""
    by_name = sets_by_name(current_sets)
    sets: dict[str, SetPins] = {}
    for desired in config.sets:
        found = by_name.get(desired.name, [])
        if len(found) != 1:
            continue
        ids = {}
        wanted = {s.key for s in desired.statuses}
        for status in found[0].statuses:
            key = status_key(status.status)
            if key in wanted and key not in ids:
                ids[key] = status.id
        sets[desired.name] = SetPins(found[0].id, ids)
    return CatalogPins(sets)
