"""``tracker-fakes``: run the fake GitHub and Jira APIs on 127.0.0.1 until Ctrl-C (for trying recovery and
reconciliation by hand; the tests and ``make demo`` start them in-process)."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Sequence

from tracker_fakes.github import FakeGitHub
from tracker_fakes.jira import FakeJira


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tracker-fakes",
        description="Fake GitHub (webhook deliveries) and Jira (JQL search) APIs on 127.0.0.1.",
    )
    parser.add_argument(
        "--github-port", type=int, default=8901, help="fake GitHub port (default 8901; 0: free)"
    )
    parser.add_argument("--jira-port", type=int, default=8902, help="fake Jira port (default 8902; 0: free)")
    args = parser.parse_args(argv)
    github, jira = FakeGitHub(port=args.github_port), FakeJira(port=args.jira_port)
    try:
        github.start()
        jira.start()
    except OSError as exc:
        github.stop()
        print(f"tracker-fakes: cannot listen: {exc.strerror or exc}")
        return 1
    print(f"fake GitHub API on {github.url} (token: {github.token}); control: {github.url}/_fake/")
    print(
        f"fake Jira site on {jira.url} (user {jira.email}, API token {jira.api_token}); control: {jira.url}/_fake/"
    )
    print("Press Ctrl-C to stop.", flush=True)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread
        pass
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        github.stop()
        jira.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
