"""Readable text and JSON summaries of plans and apply results."""

from __future__ import annotations

import json
from typing import Any

from kantata_bridge.catalog.apply import ApplyResult
from kantata_bridge.catalog.plan import REORDER_REASON, Action, ActionKind, Plan, SetPlan

_SIGNS = {
    ActionKind.CREATE_SET: "+",
    ActionKind.RENAME_SET: "~",
    ActionKind.RENAME_STATUS: "~",
    ActionKind.CREATE_STATUS: "+",
    ActionKind.DELETE_STATUS: "-",
    ActionKind.REORDER: "↕",
    ActionKind.ASSIGN_WORKSPACES: "→",
    ActionKind.MAKE_DEFAULT: "*",
}


# ANSI colours, used only when the caller asks (the CLI: stdout is a terminal and NO_COLOR is not set).
_COLOURS = {
    ActionKind.CREATE_SET: "32",  # green: something is added
    ActionKind.CREATE_STATUS: "32",
    ActionKind.RENAME_SET: "33",  # yellow: changed in place
    ActionKind.RENAME_STATUS: "33",
    ActionKind.DELETE_STATUS: "31",  # red: something goes
    ActionKind.REORDER: "36",  # cyan: moved, assigned, re-sent
    ActionKind.ASSIGN_WORKSPACES: "36",
    ActionKind.MAKE_DEFAULT: "36",
}
_RED, _YELLOW, _GREEN, _BOLD = "31", "33", "32", "1"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def _q(name: str | None) -> str:
    """A name in double quotes, escaped like JSON (a name with a quote in it stays readable)."""
    return json.dumps(name, ensure_ascii=False)


def describe_action(action: Action) -> str:
    """One line for one action, e.g. ``~ rename status "started" → "In Progress" (reuse …)``."""
    kind = action.kind
    if kind is ActionKind.CREATE_SET:
        text = f"create set {_q(action.set_name)}"
    elif kind is ActionKind.RENAME_SET:
        text = f"rename set {_q(action.name)} → {_q(action.new_name)}"
    elif kind is ActionKind.RENAME_STATUS:
        text = f"rename status {_q(action.name)} → {_q(action.new_name)} [{action.category}]"
    elif kind is ActionKind.CREATE_STATUS:
        text = f"add status {_q(action.name)} [{action.category}]"
        if action.old_category is not None:
            text = (
                f"replace status {_q(action.name)} [{action.old_category} → {action.category}]: add it again"
            )
    elif kind is ActionKind.DELETE_STATUS:
        if action.category is not None and action.old_category is not None:
            text = f"replace status {_q(action.name)} [{action.old_category} → {action.category}]: delete it"
        else:
            text = f"delete status {_q(action.name)} [{action.old_category}]"
    elif kind is ActionKind.REORDER:
        text = "reorder statuses: " + ", ".join(_q(n) for n in action.order)
    elif kind is ActionKind.ASSIGN_WORKSPACES:
        text = "use this set in workspaces " + ", ".join(str(w) for w in action.workspace_ids)
    else:
        text = "make it the account default for new projects"
    reason = action.reason
    if kind is ActionKind.DELETE_STATUS and action.category is not None:
        reason = "Kantata cannot change a category; its tasks fall back to the old category's default"
    elif kind is ActionKind.CREATE_STATUS and action.old_category is not None:
        reason = ""
    if reason and not (kind is ActionKind.REORDER and reason == REORDER_REASON):
        text += f" ({reason})"
    return f"{_SIGNS[kind]} {text}"


def _set_heading(set_plan: SetPlan) -> str:
    desired = set_plan.desired
    source = " ".join(p for p in (desired.tracker, desired.workflow) if p)
    where = f" ({source})" if source else ""
    ident = f"id {set_plan.set_id}" if set_plan.set_id else "new"
    return f"Task status set {_q(desired.name)}{where}, {ident}:"


def render_plan(plan: Plan, *, colour: bool = False) -> str:
    """The plan as text: per set, each action, each kept extra, warnings and errors, then a total line.
    ``colour``: ANSI colours by kind of step (for a terminal)."""
    lines: list[str] = []
    for set_plan in plan.sets:
        lines.append(_paint(_set_heading(set_plan), _BOLD, colour))
        for error in set_plan.errors:
            lines.append(_paint(f"  ERROR {error}", _RED, colour))
        if not set_plan.errors and not set_plan.changes:
            lines.append("  no changes")
        for action in set_plan.actions:
            lines.append(_paint(f"  {describe_action(action)}", _COLOURS[action.kind], colour))
        for kept in set_plan.kept:
            lines.append(f"  = keep status {_q(kept.name)} [{kept.category}]: {kept.reason}")
        for warning in set_plan.warnings:
            lines.append(_paint(f"  WARNING {warning}", _YELLOW, colour))
        lines.append("")
    lines.append(_paint(summary_line(plan), _BOLD, colour))
    return "\n".join(lines) + "\n"


def summary_line(plan: Plan) -> str:
    changes = len(plan.changes)
    kept = sum(len(s.kept) for s in plan.sets)
    parts = [f"{changes} change{'s' if changes != 1 else ''}" if changes else "No changes"]
    if kept:
        parts.append(
            f"{kept} extra status{'es' if kept != 1 else ''} kept"
            + ("" if plan.prune else " (--prune deletes)")
        )
    if plan.errors:
        parts.append(f"{len(plan.errors)} error{'s' if len(plan.errors) != 1 else ''}")
    return "Plan: " + ", ".join(parts) + "."


def render_apply(result: ApplyResult, *, colour: bool = False) -> str:
    """What an apply did, step by step, then whether Kantata now matches the catalog.
    ``colour``: ANSI colours (done green, failed red; for a terminal)."""
    lines: list[str] = []
    for outcome in result.outcomes:
        # An ensure step (the account default) is re-sent every run and changes nothing Kantata shows.
        mark = ("re-sent" if outcome.action.ensure else "done   ") if outcome.ok else "FAILED "
        mark = _paint(mark, _GREEN if outcome.ok else _RED, colour)
        lines.append(f"{mark} [{outcome.action.set_name}] {describe_action(outcome.action)}")
        if outcome.error:
            lines.append(_paint(f"        {outcome.error}", _RED, colour))
        for detail in outcome.details:
            lines.append(f"        - {detail}")
    for error in result.errors:
        lines.append(_paint(f"ERROR {error}", _RED, colour))
    changed = len(result.changed)
    if result.remaining is not None:
        for set_plan in result.remaining.sets:
            for kept in set_plan.kept:
                lines.append(
                    f"kept [{set_plan.desired.name}] {_q(kept.name)} [{kept.category}] ({kept.reason})"
                )
    made = f"{changed} change{'s' if changed != 1 else ''} made"
    if not result.ok or result.remaining is None:
        lines.append(_paint(f"Apply stopped: {made} before the failure.", _RED, colour))
        lines.append("Run apply again after fixing the cause: it re-plans from Kantata and carries on.")
    elif result.remaining.changes:
        lines.append(
            _paint(
                f"Apply: {made}, but a new plan still has {len(result.remaining.changes)} change(s).",
                _YELLOW,
                colour,
            )
        )
    elif not changed:
        lines.append(_paint("No changes: Kantata is in step with the catalog.", _BOLD, colour))
    else:
        lines.append(_paint(f"Apply: {made}; Kantata is in step with the catalog.", _BOLD, colour))
    return "\n".join(lines) + "\n"


def _kept(plan: Plan) -> list[dict[str, str]]:
    return [
        {"set": s.desired.name, "name": k.name, "category": k.category, "reason": k.reason}
        for s in plan.sets
        for k in s.kept
    ]


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data."""
    return {
        "mode": "plan",
        "prune": plan.prune,
        "changes": len(plan.changes),
        "actions": [a.to_dict() for a in plan.actions],
        "kept": _kept(plan),
        "warnings": list(plan.warnings),
        "errors": list(plan.errors),
    }


def apply_summary(result: ApplyResult) -> dict[str, Any]:
    """The apply result as JSON-ready data: what changed, what failed, whether Kantata is now in step."""
    remaining = result.remaining
    return {
        "mode": "apply",
        "prune": result.planned.prune,
        "ok": result.ok,
        "changes": len(result.changed),
        "actions": [o.to_dict() for o in result.outcomes],
        "kept": _kept(remaining or result.planned),
        "warnings": list(result.planned.warnings),
        "errors": list(result.errors) + [o.error for o in result.outcomes if o.error],
        "converged": remaining is not None and not remaining.changes and not remaining.errors,
    }
