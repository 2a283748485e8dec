"""The GitHub client against the fake GitHub over HTTP: pagination, rate limits, errors, write spacing."""

from __future__ import annotations

import pytest
import requests
from kantata_bridge.recovery.github_api import (
    GitHubApiError,
    GitHubClient,
    GitHubRateLimitedError,
    HookDelivery,
    HookRef,
)


class Sleeps:
    """An injectable sleep that records what it was asked for (and can act instead of waiting)."""

    def __init__(self, on_sleep=None):
        self.calls: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.on_sleep:
            self.on_sleep(seconds)


@pytest.fixture
def hook(fake_github):
    # Nothing listens on this URL: every delivery fails to connect, which is all these tests need.
    return fake_github.add_hook("acme/webapp", url="http://127.0.0.1:9/unreachable", secret="s")


def client_for(fake_github, **kw) -> GitHubClient:
    kw.setdefault("min_write_interval", 0.0)
    return GitHubClient(fake_github.token, fake_github.url, **kw)


def ref(hook) -> HookRef:
    return HookRef.parse(hook.path)


def test_lists_every_delivery_newest_first_following_the_cursor(fake_github, hook):
    for n in range(7):
        fake_github.send_event(hook.hook_id, "issues", {"action": "opened", "n": n})
    client = client_for(fake_github)
    pages = list(client.list_deliveries(ref(hook), per_page=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    ids = [d.id for p in pages for d in p]
    assert ids == sorted((a.id for a in fake_github.deliveries()), reverse=True)
    assert all(not d.ok and d.status == "failed to connect" for p in pages for d in p)
    cursors = [r.query.get("cursor") for r in fake_github.requests]
    assert cursors[0] is None
    assert all(c and c.startswith("v1_") for c in cursors[1:])


def test_an_organization_hook_is_listed_under_orgs(fake_github):
    hook = fake_github.add_hook(org="acme", url="http://127.0.0.1:9/x", secret="s")
    fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    (page,) = list(client_for(fake_github).list_deliveries(ref(hook)))
    assert len(page) == 1
    assert fake_github.requests[0].path == f"/orgs/acme/hooks/{hook.hook_id}/deliveries"


def test_redeliver_makes_github_send_the_same_delivery_again(fake_github, hook):
    first = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    client_for(fake_github).redeliver(ref(hook), first.id)
    again = fake_github.deliveries()[-1]
    assert again.redelivery
    assert (again.guid, again.body, again.headers) == (first.guid, first.body, first.headers)
    assert again.id > first.id


def test_a_token_github_refuses_is_an_error_that_does_not_name_it(fake_github, hook):
    client = GitHubClient("ghp_wrong-token", fake_github.url)
    with pytest.raises(GitHubApiError) as caught:
        list(client.list_deliveries(ref(hook)))
    assert caught.value.status == 401
    assert "ghp_wrong-token" not in str(caught.value)
    assert "ghp_wrong-token" not in repr(client)


def test_an_unknown_hook_says_what_to_check(fake_github, hook):
    with pytest.raises(GitHubApiError, match="Webhooks permission") as caught:
        list(client_for(fake_github).list_deliveries(HookRef("acme", hook.hook_id + 1, "webapp")))
    assert caught.value.status == 404
    assert caught.value.retryable is False


def test_waits_for_the_reset_when_the_primary_limit_is_used_up(fake_github, hook):
    # Given two requests left in the window
    fake_github.set_rate_limit(100, remaining=2, reset_in=30)
    fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    sleeps = Sleeps(on_sleep=lambda s: fake_github.reset_rate_limit())
    client = client_for(fake_github, sleep=sleeps)
    # When three calls are made
    for _ in range(3):
        list(client.list_deliveries(ref(hook)))
    # Then the third one waited for the reset (announced by x-ratelimit-remaining: 0) instead of failing
    assert len(sleeps.calls) == 1
    assert 0 < sleeps.calls[0] <= 31
    assert [r.status for r in fake_github.requests] == [200, 200, 200]


def test_a_403_rate_limit_answer_waits_until_the_reset_and_repeats(fake_github, hook):
    fake_github.set_rate_limit(100, remaining=0, reset_in=20)
    sleeps = Sleeps(on_sleep=lambda s: fake_github.reset_rate_limit())
    client = client_for(fake_github, sleep=sleeps)
    assert list(client.list_deliveries(ref(hook))) == [[]]
    assert [r.status for r in fake_github.requests] == [403, 200]
    assert 0 < sleeps.calls[0] <= 22


@pytest.mark.parametrize("method", ["list", "redeliver"])
def test_a_secondary_limit_waits_retry_after_and_repeats(fake_github, hook, method):
    first = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    fake_github.secondary_limit(1, retry_after=7)
    sleeps = Sleeps()
    client = client_for(fake_github, sleep=sleeps)
    if method == "list":
        list(client.list_deliveries(ref(hook)))
    else:
        client.redeliver(ref(hook), first.id)
        assert len([a for a in fake_github.deliveries() if a.redelivery]) == 1
    assert sleeps.calls == [7.0]
    assert [r.status for r in fake_github.requests][:1] == [403]


def test_a_secondary_limit_without_retry_after_waits_at_least_a_minute(fake_github, hook):
    fake_github.secondary_limit(1, retry_after=None)
    sleeps = Sleeps()
    list(client_for(fake_github, sleep=sleeps, max_wait=120).list_deliveries(ref(hook)))
    assert sleeps.calls == [60.0]


def test_a_wait_longer_than_the_run_may_spend_stops_with_how_long(fake_github, hook):
    fake_github.secondary_limit(1, retry_after=600)
    sleeps = Sleeps()
    with pytest.raises(GitHubRateLimitedError) as caught:
        list(client_for(fake_github, sleep=sleeps, max_wait=60).list_deliveries(ref(hook)))
    assert caught.value.wait_seconds == 600
    assert caught.value.retryable
    assert sleeps.calls == []


def test_writes_are_spaced_by_the_minimum_interval(fake_github, hook):
    first = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    clock = [1000.0]
    sleeps = Sleeps(on_sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    client = GitHubClient(
        fake_github.token, fake_github.url, min_write_interval=1.0, sleep=sleeps, clock=lambda: clock[0]
    )
    client.redeliver(ref(hook), first.id)
    client.redeliver(ref(hook), first.id)
    assert sleeps.calls == [pytest.approx(1.0)]


def test_a_redelivery_whose_answer_is_lost_is_not_repeated_and_is_ambiguous(fake_github, hook):
    first = fake_github.send_event(hook.hook_id, "issues", {"action": "opened"})
    fake_github.faults.script(["drop_after"], method="POST")
    with pytest.raises(GitHubApiError) as caught:
        client_for(fake_github).redeliver(ref(hook), first.id)
    assert caught.value.ambiguous
    assert len([r for r in fake_github.requests if r.method == "POST"]) == 1
    assert len([a for a in fake_github.deliveries() if a.redelivery]) == 1  # GitHub did take it


def test_a_list_that_fails_in_transit_is_repeated(fake_github, hook):
    fake_github.faults.script(["drop", 502])
    sleeps = Sleeps()
    assert list(client_for(fake_github, sleep=sleeps).list_deliveries(ref(hook))) == [[]]
    assert [r.status for r in fake_github.requests] == [0, 502, 200]


def test_a_next_link_to_another_host_is_refused(fake_github):
    client = client_for(fake_github)
    response = requests.Response()
    response.headers["Link"] = '<https://evil.example/repos/a/b/hooks/1/deliveries?cursor=x>; rel="next"'
    with pytest.raises(GitHubApiError, match="another host"):
        client._next_link(response)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"guid": "g", "delivered_at": "2026-11-22T10:00:00Z"}, "delivery.id"),
        ({"id": 1, "delivered_at": "2026-11-22T10:00:00Z"}, "guid"),
        ({"id": 1, "guid": "g", "delivered_at": "yesterday"}, "delivered_at"),
        ("not an object", "not a JSON object"),
    ],
)
def test_a_malformed_delivery_is_named(doc, message):
    with pytest.raises(ValueError, match=message):
        HookDelivery.from_json(doc)
