"""A stateful fuzzer against a real daemon (issue 14): thousands of mutated messages over real sessions.

Hypothesis drives ``bench.fuzz``'s client: each rule sends one seed message (UPDATEs with assorted
attributes, a withdrawal, KEEPALIVE, ROUTE-REFRESH, OPEN) mutated by drawn operations over an
Established session to a :class:`~controlplane.daemon.Daemon` on loopback, reconnecting with a real
OPEN exchange after every reset. Each reaction is classified by observing the session (see
``bench/fuzz.py``) and must be one of the RFC's; the invariants: the daemon's thread is alive, no
exception reached its event loop or an ERROR log line, its sans-IO core never took its "internal
error" path. About 2,000 messages, a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from bench.fuzz import OPS, FuzzClient, FuzzDaemon, Tally, mutate, seeds
from tests.support.ports import free_port

REACTIONS = {"reset", "treat-as-withdraw", "attribute-discard", "accepted", "ignored", "closed (our NOTIFICATION)"}

operations = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 4095), st.integers(0, 255),
                                st.binary(min_size=1, max_size=8)), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def target() -> Iterator[FuzzDaemon]:
    daemon = FuzzDaemon(free_port())
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.mark.timeout(120)
def test_mutated_messages_over_real_sessions_get_rfc_reactions(target: FuzzDaemon) -> None:
    tally = Tally()
    client = FuzzClient(target, tally)
    count = iter(range(10**9))

    class Session(RuleBasedStateMachine):
        @rule(seed=st.integers(0, len(seeds(0)) - 1), ops=operations)
        def send_mutated(self, seed: int, ops: list[tuple[str, int, int, bytes]]) -> None:
            index = next(count)
            reaction = client.step(index, mutate(seeds(index)[seed], ops))
            assert reaction in REACTIONS, tally.violations[-1:]

        @rule(seed=st.integers(0, len(seeds(0)) - 1))
        def send_valid(self, seed: int) -> None:
            index = next(count)
            message = seeds(index)[seed]
            reaction = client.step(index, mutate(message, []))
            if message[18] == 1:  # an OPEN in Established: FSM error 5/3 (RFC 6608), the only valid reset
                assert reaction == "reset" and tally.notifications[(5, 3)], reaction
            else:
                assert reaction in {"accepted", "ignored"}, (seed, reaction)

        @invariant()
        def daemon_is_well(self) -> None:
            assert target.alive and target.errors == [] and tally.violations == []

    try:
        run_state_machine_as_test(Session, settings=settings(
            max_examples=40, stateful_step_count=50, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck)))
    finally:
        client.close()
    print(f"fuzz: {tally.messages} messages, {tally.sessions} sessions, {dict(tally.reactions)}, "
          f"{dict(tally.notifications)}")
    assert tally.messages >= 1000 and tally.reactions["reset"] and tally.reactions["accepted"]
