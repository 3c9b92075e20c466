"""A rate limit belongs to the receiver: Retry-After holds every message waiting for it."""

from __future__ import annotations

from datetime import timedelta

from alerts.outbox import PENDING, SENT
from tests.fakes.slack_api import FakeSlack
from tests.test_outbox import T0, Store, notifier_for, post_requests, slack

__all__ = ["slack"]  # fixture used by name below (`store` is in conftest)


def test_retry_after_holds_all_of_the_receivers_messages(store: Store, slack: FakeSlack) -> None:
    """Three models' incidents are due for one Slack receiver; Slack answers the first post
    with 429 and Retry-After 120. The same drain sends nothing more to that receiver, every
    waiting message is held until the limit ends, and then all three go out once each."""
    for model in ("a", "b", "c"):
        store.open(["chat"], T0, model=model)
    slack.rate_limit_next(1, retry_after=120)
    result = store.drain({"chat": notifier_for(slack)}, T0)
    assert result.sent == 0 and result.retried == 1
    assert post_requests(slack) == 0
    held = store.messages()
    assert all(m.status == PENDING for m in held)
    assert all(m.next_attempt_at >= T0 + timedelta(seconds=120) for m in held)
    store.drain({"chat": notifier_for(slack)}, T0 + timedelta(seconds=60))
    assert post_requests(slack) == 0
    store.drain({"chat": notifier_for(slack)}, T0 + timedelta(minutes=5))
    assert post_requests(slack) == 3
    assert all(m.status == SENT for m in store.messages())
