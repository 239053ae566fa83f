"""The figures counted as things happen: request transitions, approval waits, revocation
lateness and provider calls, counted once their transaction commits (never for one that
rolled back), with no database reads."""

from __future__ import annotations

import re
from datetime import timedelta

from prometheus_client import generate_latest

from pimbot.providers.instrumented import InstrumentedProvider
from pimbot.store.database import Database
from pimbot.store.observations import Figure, observe
from pimbot.testing.fakes import FakeClock, RecordingProvider
from pimbot.ui.cards import ActionId
from pimbot_server.metrics import Metrics

from .harness import make_pim, request_id_of

BOB, ALICE = "bob@example.com", "alice@example.com"


def figure(metrics: Metrics, line: str) -> float:
    """The value of one exposition line (``name{labels}``), 0 when absent."""
    text = generate_latest(metrics.registry).decode()
    found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_request_life_is_counted_as_it_happens(db: Database) -> None:
    provider = RecordingProvider()
    pim = await make_pim(db, provider=provider)
    metrics = Metrics(db, pim.clock)
    pim.core.ctx.providers = {"demo": InstrumentedProvider("demo", provider, metrics)}

    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason fix"))
    pim.clock.advance(timedelta(minutes=12))  # the approver takes twelve minutes
    assert (await pim.click(ALICE, ActionId.APPROVE, rid)).ok
    await pim.advance(timedelta(hours=1, seconds=1))

    assert figure(metrics, 'pimbot_request_transitions_total{state="active"}') == 1
    assert figure(metrics, 'pimbot_request_transitions_total{state="expired"}') == 1
    assert figure(metrics, 'pimbot_approval_wait_seconds_count{outcome="approved"}') == 1
    assert figure(metrics, 'pimbot_approval_wait_seconds_sum{outcome="approved"}') == 720
    assert figure(metrics, "pimbot_revocation_lateness_seconds_count") == 1
    assert figure(metrics, 'pimbot_revocation_lateness_seconds_bucket{le="2.0"}') == 1
    calls = 'pimbot_provider_call_seconds_count{action="%s",provider="demo"}'
    assert figure(metrics, calls % "grant") == 1
    assert figure(metrics, calls % "revoke") == 1
    assert figure(metrics, 'pimbot_provider_errors_total{action="grant",provider="demo"}') == 0


async def test_a_failing_provider_call_is_counted_as_an_error(db: Database) -> None:
    provider = RecordingProvider(fail_grants=1)
    pim = await make_pim(db, provider=provider)
    metrics = Metrics(db, pim.clock)
    pim.core.ctx.providers = {"demo": InstrumentedProvider("demo", provider, metrics)}
    await pim.say(BOB, "activate staging-deploy for 30m")
    assert figure(metrics, 'pimbot_provider_errors_total{action="grant",provider="demo"}') == 1
    await pim.advance(timedelta(minutes=5))  # the retry succeeds
    calls = 'pimbot_provider_call_seconds_count{action="grant",provider="demo"}'
    assert figure(metrics, calls) == 2
    assert figure(metrics, 'pimbot_provider_errors_total{action="grant",provider="demo"}') == 1


async def test_a_transaction_that_rolls_back_is_not_counted(db: Database) -> None:
    metrics = Metrics(db, FakeClock())
    try:
        async with db.transaction() as session:
            observe(session, Figure.REQUEST_MOVED, state="active")
            raise RuntimeError("lost the race")
    except RuntimeError:
        pass
    async with db.transaction() as session:
        observe(session, Figure.REQUEST_MOVED, state="expired")
    assert figure(metrics, 'pimbot_request_transitions_total{state="active"}') == 0
    assert figure(metrics, 'pimbot_request_transitions_total{state="expired"}') == 1
