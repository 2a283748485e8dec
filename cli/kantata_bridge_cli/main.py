"""`kantata-bridge`: the bridge's operator tools (explain, redrive, catalog, link, recover, reconcile) and the
local stack (demo, serve).

Each subcommand lives in its own module, imported only when it runs. A module provides
``add_arguments(parser)`` (or ``add_arguments(parser, name)``) and ``run(args) -> int``, and may provide
``EXAMPLES`` (a string, or a dict by subcommand name) for the end of its ``--help``. The conventions every
subcommand follows (exit codes, the error line, stdout for data) are in ``console.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kantata_bridge_cli import console

TOOL = "kantata-bridge"
DESCRIPTION = (
    "The bridge's operator tools (explain, redrive, catalog, link, recover, reconcile) and the local stack "
    "(demo, serve)."
)

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
    "link": (
        "kantata_bridge_cli.link",
        "link Kantata workspaces to tracker sources (routing without a config edit)",
    ),
    "recover": (
        "kantata_bridge_cli.recover",
        "redeliver failed GitHub webhook deliveries the bridge never saw",
    ),
    "reconcile": ("kantata_bridge_cli.recover", "queue Jira changes the bridge never processed"),
}

EXAMPLES = """\
examples:
  kantata-bridge demo                     # the whole pipeline on this machine, then exit
  kantata-bridge serve --port 8787        # keep the local stack up for your own webhooks (Ctrl-C stops it)
  kantata-bridge explain --config config/routing.example.yaml --tracker github \\
      --header 'X-GitHub-Event: issues' --body events/payloads/github_issues_opened.json
  kantata-bridge redrive --stack-name kantata-bridge --dry-run
  kantata-bridge link add --workspace 41234567 github acme/webapp   # route a repository by a Kantata link
  kantata-bridge COMMAND --help           # each command's options and examples

exit codes: 0 ok, 1 failed, 2 bad input or usage
"""


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (if any) has its module imported and its options."""
    parser = console.ArgumentParser(prog=TOOL, description=DESCRIPTION, epilog=EXAMPLES)
    console.add_version(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(p, name) if _takes_name(module) else module.add_arguments(p)
            examples = getattr(module, "EXAMPLES", None)
            p.epilog = examples.get(name) if isinstance(examples, dict) else examples
            p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kantata-bridge`` console script. Returns the exit code (0 ok, 1 failed, 2 bad input or usage)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return console.run_main(TOOL, lambda: _run(args))


def _run(argv: Sequence[str]) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args._module.run(args))
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("kantata_"):
            raise  # our own code is broken: not something the user can install
        # The demo's and serve's dependencies (moto's server) come with the "demo" extra, not the runtime.
        raise console.CliError(
            f"{args.command} needs the Python package {exc.name!r}, which is not installed",
            hint="Install the demo extra: pip install -e '.[demo]' (make demo does it for you).",
            exit_code=console.EXIT_FAILED,
        ) from None


def _takes_name(module: object) -> bool:
    fn = getattr(module, "add_arguments", None)
    code = getattr(fn, "__code__", None)
    return bool(code and code.co_argcount >= 2)


if __name__ == "__main__":
    sys.exit(main())
