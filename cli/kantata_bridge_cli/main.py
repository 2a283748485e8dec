"""`kantata-bridge`: the bridge's operator tools (explain, redrive, catalog) and the local stack (demo, serve).

Each subcommand lives in its own module, imported only when it runs. A module provides
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand → (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "kantata_bridge_dev.local_stack",
        "run the whole pipeline locally on sample deliveries, then exit",
    ),
    "serve": ("kantata_bridge_dev.local_stack", "keep the local stack running for your own webhooks"),
    "redrive": ("kantata_bridge_cli.redrive", "move dead-lettered and parked deliveries back into the queue"),
    "explain": (
        "kantata_bridge_cli.explain",
        "show what the worker would do with a delivery, writing nothing",
    ),
    "catalog": (
        "kantata_bridge_cli.catalog",
        "plan / apply tracker workflows as Kantata task status sets",
    ),
    "recover": (
        "kantata_bridge_cli.recover",
        "redeliver failed GitHub webhook deliveries the bridge never saw",
    ),
    "reconcile": ("kantata_bridge_cli.recover", "queue Jira changes the bridge never processed"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="kantata-bridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(p, name) if _takes_name(module) else module.add_arguments(p)
            p.set_defaults(_module=module)
    args = parser.parse_args(argv)
    return int(args._module.run(args))


def _takes_name(module: object) -> bool:
    fn = getattr(module, "add_arguments", None)
    code = getattr(fn, "__code__", None)
    return bool(code and code.co_argcount >= 2)


if __name__ == "__main__":
    sys.exit(main())
