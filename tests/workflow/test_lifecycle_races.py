"""Races on PostgreSQL, where writes really run at the same time (SQLite's single writer
would hide them). Each test plays its race several times; each fails when its guard (the
compare-and-set it names) is removed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pimbot.scheduling.queue import ClaimedJob
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.ui.cards import ActionId, Reply
from pimbot.workflow.actor import Actor
from pimbot.workflow.jobs.handlers import approval_timeout
from pimbot.workflow.lifecycle.grants import expire

from .harness import Pim, make_pim, request_id_of

BOB, ALICE, CAROL, ADMIN = ("bob@example.com", "alice@example.com", "carol@example.com",
                            "sec-lead@example.com")
ROUNDS = 8

on_postgres = pytest.mark.parametrize(
    "db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


async def _row(db: Database, request_id: str) -> RequestRow:
    async with db.read() as session:
        row = await session.get(RequestRow, request_id)
    assert row is not None
    return row


async def _decisions(db: Database, request_id: str) -> list[str]:
    """The audit events that decided the request (not partial votes)."""
    async with db.read() as session:
        events = (await session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq))).all()
    return [e.action for e in events if e.detail.get("request") == request_id
            and e.action in {"request.approved", "request.denied", "request.cancelled",
                             "request.timed_out"}
            and e.detail.get("state") != "pending_approval"]


def _job(kind: str, request_id: str) -> ClaimedJob:
    """The job as the worker would hand it to its handler."""
    return ClaimedJob(0, kind, {"request_id": request_id}, 0, datetime(2026, 1, 1, tzinfo=UTC))


async def _say(pim: Pim, email: str, text: str) -> Reply:
    return await pim.core.handle_text(Actor(email), text)


@on_postgres
async def test_simultaneous_votes_on_a_two_approval_role_approve_it(db: Database) -> None:
    """Guard: ``row.votes_count += 1`` in approval._vote (the two votes conflict)."""
    pim = await make_pim(db)
    for _ in range(ROUNDS):
        rid = request_id_of(await pim.say(BOB, "activate two-man for 1h reason x"))
        votes = await asyncio.gather(_say(pim, ALICE, f"approve {rid}"),
                                     _say(pim, CAROL, f"approve {rid}"))
        assert all(v.ok for v in votes), [v.text for v in votes]
        await pim.core.drain()
        row = await _row(db, rid)
        assert row.state == "active", f"two approvals left {rid} {row.state}"
        assert await _decisions(db, rid) == ["request.approved"]
        await pim.say(BOB, "deactivate two-man")
    assert pim.provider.unmatched() == {}


@on_postgres
async def test_approve_against_cancel_gives_one_outcome(db: Database) -> None:
    """Guard: the version compare-and-set on requests (``version_id_col``)."""
    await _approve_against_cancel(db, lambda pim, rid: _say(pim, ALICE, f"approve {rid}"))


@on_postgres
async def test_an_approve_click_against_cancel_gives_one_outcome(db: Database) -> None:
    """The click checks, votes and decides in one transaction. Guards: the version
    compare-and-set, the slot locked before the vote touches the row (else the two
    deadlock), the retried cancel answering as its first attempt saw."""
    await _approve_against_cancel(
        db, lambda pim, rid: pim.core.handle_action(Actor(ALICE), ActionId.APPROVE, rid))


async def _approve_against_cancel(db: Database,
                                  approve_it: Callable[[Pim, str], Awaitable[Reply]]) -> None:
    pim = await make_pim(db)
    for _ in range(ROUNDS):
        rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
        approve, cancel = await asyncio.gather(approve_it(pim, rid),
                                               _say(pim, BOB, f"cancel {rid}"))
        await pim.core.drain()
        row = await _row(db, rid)
        decided = await _decisions(db, rid)
        assert len(decided) == 1, decided
        assert approve.ok != cancel.ok, (approve.text, cancel.text)
        loser = cancel if approve.ok else approve
        assert "went wrong" not in loser.text, loser.text  # it says what happened instead
        if approve.ok:
            assert row.state == "active" and decided == ["request.approved"]
            await pim.say(BOB, "deactivate prod-db-admin")
        else:
            assert row.state == "cancelled" and decided == ["request.cancelled"]
    grants = len(pim.provider.actions("grant"))
    assert grants == len(pim.provider.actions("revoke"))
    assert pim.provider.unmatched() == {} and pim.provider.credentials == {}


@on_postgres
async def test_cancel_against_the_timeout_gives_one_outcome(db: Database) -> None:
    pim = await make_pim(db)
    for _ in range(ROUNDS):
        rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason x"))
        row = await _row(db, rid)
        assert row.approval_due_at is not None
        pim.clock.set(row.approval_due_at)
        cancel, timed_out = await asyncio.gather(
            _say(pim, BOB, f"cancel {rid}"),
            approval_timeout(pim.core.ctx, _job("approval_timeout", rid)),
            return_exceptions=True)
        await pim.core.drain()
        decided = await _decisions(db, rid)
        assert len(decided) == 1, (decided, cancel, timed_out)
        state = (await _row(db, rid)).state
        assert state == {"request.cancelled": "cancelled",
                         "request.timed_out": "timed_out"}[decided[0]]
        assert isinstance(cancel, Reply) and cancel.ok == (state == "cancelled"), cancel
    assert pim.provider.calls == []


@on_postgres
async def test_expiry_against_extend_gives_one_outcome(db: Database) -> None:
    """Guards: the version compare-and-set, expire's 'extended since' check."""
    pim = await make_pim(db)
    outcomes = set()
    for _ in range(ROUNDS):
        rid = request_id_of(await pim.say(BOB, "activate staging-deploy for 1h"))
        row = await _row(db, rid)
        assert row.expires_at is not None
        pim.clock.set(row.expires_at)
        extended, expired = await asyncio.gather(
            _say(pim, BOB, "extend staging-deploy for 1h"),
            expire(pim.core.ctx, _job("expire", rid)), return_exceptions=True)
        assert not isinstance(expired, BaseException) or "StaleData" in repr(expired), expired
        await pim.core.drain()
        row = await _row(db, rid)
        assert isinstance(extended, Reply)
        if extended.ok:
            outcomes.add("extended")
            assert row.state == "active", (row.state, extended.text)
            assert row.expires_at is not None and row.expires_at > pim.clock.now()
            assert (BOB, "staging-deploy") in pim.provider.held
            await pim.say(BOB, "deactivate staging-deploy")
        else:
            outcomes.add("expired")
            assert row.state == "expired" and row.revoked_at is not None, extended.text
        assert (BOB, "staging-deploy") not in pim.provider.held
    assert pim.provider.unmatched() == {} and pim.provider.credentials == {}


@on_postgres
async def test_simultaneous_break_glass_gives_one_grant(db: Database) -> None:
    """Guard: the slot lock and re-check in activation._create."""
    pim = await make_pim(db)
    totp = await pim.enrol(BOB)
    refusals = []
    for _ in range(ROUNDS // 2):
        now = pim.clock.now()
        # Two codes valid at once (one step of drift): MFA lets both through, in this order.
        codes = [totp.at(now), totp.at(now + timedelta(seconds=30))]
        replies = await asyncio.gather(*(
            _say(pim, BOB, f"breakglass prod-db-admin code {code} reason db down")
            for code in codes))
        await pim.core.drain()
        assert sum(r.ok for r in replies) == 1, [r.text for r in replies]
        refusals += [r.text for r in replies if not r.ok]
        await pim.say(BOB, "deactivate prod-db-admin")
        pim.clock.advance(timedelta(seconds=90))
    assert any("only one at a time" in text for text in refusals), refusals
    assert len(pim.provider.actions("grant")) == ROUNDS // 2
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(RequestRow).where(
            RequestRow.kind == "breakglass"))
    assert count == ROUNDS // 2


@on_postgres
async def test_an_extension_asked_for_as_the_activation_ends_is_never_left_waiting(
        db: Database) -> None:
    """Guard: asking for an extension writes its activation's row (a compare-and-set in
    extension._request_extension), so it and a deactivate started in the same instant
    serialise: either the extension is refused (the activation has ended) or it is withdrawn
    with the activation; never an extension waiting for approval on ended access."""
    pim = await make_pim(db)
    for _ in range(ROUNDS * 2):
        rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h reason INC-1"))
        assert (await pim.click(ALICE, ActionId.APPROVE, rid)).ok
        ext, ended = await asyncio.gather(_say(pim, BOB, "extend prod-db-admin for 1h"),
                                          _say(pim, BOB, "deactivate prod-db-admin"))
        assert ended.ok, ended.text
        await pim.core.drain()
        assert ext.ok or "no active" in ext.text or "not active" in ext.text, ext.text
        async with db.read() as session:
            waiting = (await session.scalars(select(RequestRow).where(
                RequestRow.parent_id == rid, RequestRow.state == "pending_approval"))).all()
        assert waiting == [], f"extension {waiting[0].id} waits on ended {rid}"
    assert pim.provider.unmatched() == {}
