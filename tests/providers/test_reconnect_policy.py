"""Reconnect policy (#14): jittered backoff, and a cap on sessions that die right after setup."""

from __future__ import annotations

from vocalis.providers.reconnect import ReconnectPolicy


def test_a_provider_that_accepts_then_drops_every_connection_is_given_up() -> None:
    policy = ReconnectPolicy(base_s=0.5, max_s=15.0, max_failures=6, stable_s=30.0, rng=lambda: 1.0)
    delays = []
    while True:
        policy.session_ended(lasted_s=0.2)  # set up, then dropped at once
        if policy.exhausted:
            break
        delays.append(policy.delay())
    # The first drop reconnects at once; then growing waits (not a reconnect every second
    # forever), and after six short sessions in a row it stops.
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 15.0]
    assert policy.failures == 7


def test_a_stable_session_resets_the_failures_and_reconnects_at_once() -> None:
    policy = ReconnectPolicy(stable_s=30.0)
    policy.connect_failed()
    assert policy.delay() > 0
    policy.session_ended(lasted_s=0.5)
    assert policy.failures == 2 and policy.delay() > 0
    policy.session_ended(lasted_s=45.0)
    assert policy.failures == 0 and policy.delay() == 0.0
    policy.session_ended(lasted_s=1.0, planned=True)  # expiry / proactive recycle: healthy
    assert policy.failures == 0


def test_jitter_spreads_the_delay_over_its_upper_half() -> None:
    low = ReconnectPolicy(base_s=1.0, rng=lambda: 0.0)
    high = ReconnectPolicy(base_s=1.0, rng=lambda: 0.999)
    for policy in (low, high):
        policy.connect_failed()
        policy.connect_failed()  # ceiling 2 s
    assert low.delay() == 1.0
    assert 1.99 < high.delay() < 2.0
