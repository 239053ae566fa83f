"""The keyed audit chain and its checkpoints, through ``pimbot audit verify`` (issue 8, item 6).

The attacker can write the database (``audit_attacks.Attacker``) but has neither the audit
key nor the checkpoint file. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from audit_attacks import Attacker
from audit_cli import T0, Pimbot, pimbot_for
from pimbot.secretbox import generate_key
from pimbot.store.audit_crypto import AuditKey, load_audit_key
from pimbot.store.database import Database

EVENTS = 8


@pytest.fixture
async def pimbot(db: Database, tmp_path: Path) -> Pimbot:
    bot = pimbot_for(tmp_path, db.url)
    await bot.write_events(EVENTS)
    return bot


def _broken_at(done_err: str) -> int:
    assert "audit log broken at event " in done_err, done_err
    return int(done_err.split("audit log broken at event ", 1)[1].split(":", 1)[0])


async def test_an_intact_chain_passes_against_its_checkpoint(pimbot: Pimbot) -> None:
    done = await pimbot.process("audit", "verify")  # the real command, no arguments
    assert done.code == 0, done.err
    assert done.out.startswith(f"audit log intact: {EVENTS} events; head {EVENTS}:")
    assert f"the newest names event {EVENTS}" in done.out


async def test_an_edit_with_the_chain_recomputed_in_sha256_is_named(
    pimbot: Pimbot, db: Database
) -> None:
    await Attacker(db).edit_actor(4)  # hashes recomputed from 4 on; MACs left as they were
    done = await pimbot.process("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 4
    assert "does not match its MAC" in done.err


async def test_an_edit_with_the_macs_stripped_is_named(pimbot: Pimbot, db: Database) -> None:
    await Attacker(db, strip_macs=True).edit_actor(4)  # looks like events from before keys
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 4
    assert "carries no MAC although the events before it do" in done.err
    chain_alone = await pimbot("audit", "verify", "--no-checkpoint")  # no checkpoint needed
    assert _broken_at(chain_alone.err) == 4


async def test_a_whole_chain_rewritten_without_macs_is_refused_at_its_first_event(
    pimbot: Pimbot, db: Database
) -> None:
    # Every MAC gone and every hash recomputed: an "unkeyed" log. The checkpoint says events
    # from 1 on carry a MAC, so event 1 is named (the edit itself is at 6).
    await Attacker(db, strip_macs=True).rewrite(lambda rows: None, rechain_from=1)
    await Attacker(db).edit_actor(6)
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 1
    assert "the checkpoints say every event from 1 on has one" in done.err


async def test_removing_the_newest_events_is_caught_by_the_checkpoint(
    pimbot: Pimbot, db: Database
) -> None:
    await Attacker(db).delete_from(EVENTS - 1)
    done = await pimbot.process("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == EVENTS - 1
    assert f"the log ends at event {EVENTS - 2}" in done.err
    assert "were removed" in done.err


async def test_removing_then_appending_new_events_is_caught_by_the_checkpoint(
    pimbot: Pimbot, db: Database
) -> None:
    # The attacker truncates; pimbot goes on appending (validly MACed) over the gap.
    await Attacker(db).delete_from(EVENTS - 1)
    await pimbot.write_events(3, start=100)
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == EVENTS
    assert "differs from the checkpoint" in done.err


async def test_reordered_events_are_named(pimbot: Pimbot, db: Database) -> None:
    await Attacker(db).swap(3, 5)
    done = await pimbot.process("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 3


async def test_a_chain_rewritten_under_a_guessed_key_is_named(
    pimbot: Pimbot, db: Database
) -> None:
    guess = AuditKey(b"\x01" * 32)
    await Attacker(db, key=guess).edit_actor(5)  # its own key id from 5 on
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 5
    assert f"MACed under audit key {guess.key_id}, which is neither" in done.err

    real_id = load_audit_key(pimbot.env["PIMBOT_AUDIT_KEY"]).key_id
    await Attacker(db, key=guess, fake_key_id=real_id).edit_actor(3)  # claims the real id
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 3
    assert "does not match its MAC" in done.err


async def test_a_wrong_key_fails_verification(pimbot: Pimbot) -> None:
    done = await pimbot.process("audit", "verify", PIMBOT_AUDIT_KEY=generate_key())
    assert done.code == 1
    assert _broken_at(done.err) == 1
    assert "neither PIMBOT_AUDIT_KEY nor in PIMBOT_AUDIT_KEY_PREVIOUS" in done.err


async def test_the_anchor_still_works(pimbot: Pimbot, db: Database) -> None:
    intact = await pimbot("audit", "verify")
    head = intact.out.split("head ", 1)[1].split()[0]
    assert (await pimbot("audit", "verify", "--anchor", head, "--no-checkpoint")).code == 0
    await Attacker(db).delete_from(EVENTS)
    done = await pimbot("audit", "verify", "--anchor", head, "--no-checkpoint")
    assert done.code == 1
    assert f"event {EVENTS} of the anchor is missing" in done.err


async def test_a_forged_checkpoint_line_is_refused(pimbot: Pimbot, db: Database) -> None:
    # Someone who can also write the checkpoint file rewinds it after a truncation.
    await Attacker(db).delete_from(EVENTS - 1)
    lines = pimbot.checkpoint_file.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"head_seq": EVENTS - 2}
    pimbot.checkpoint_file.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert "does not match its MAC (edited or forged" in done.err


async def test_without_a_checkpoint_verify_says_truncation_cannot_be_ruled_out(
    pimbot: Pimbot,
) -> None:
    pimbot.checkpoint_file.unlink()
    done = await pimbot("audit", "verify")
    assert done.code == 1
    assert "removal of the newest events cannot be ruled out" in done.err
    chain_only = await pimbot("audit", "verify", "--no-checkpoint")
    assert chain_only.code == 0, chain_only.err
    assert "--no-checkpoint" in chain_only.out


async def test_rotation_keeps_older_events_verifiable(pimbot: Pimbot, db: Database) -> None:
    old, new = pimbot.env["PIMBOT_AUDIT_KEY"], generate_key()
    rotated = await pimbot("audit", "rotate-key", "--new-key", "-", stdin=new + "\n")
    assert rotated.code == 0, rotated.err
    new_id = load_audit_key(new).key_id
    assert f"MACed under key {new_id}" in rotated.out
    assert new not in rotated.out + rotated.err
    pimbot.env["PIMBOT_AUDIT_KEY"] = new
    await pimbot.write_events(2, start=50)

    with_previous = await pimbot("audit", "verify", PIMBOT_AUDIT_KEY_PREVIOUS=old)
    assert with_previous.code == 0, with_previous.err
    assert with_previous.out.startswith(f"audit log intact: {EVENTS + 3} events")
    new_only = await pimbot("audit", "verify")  # the old key is gone: newer MACs vouch
    assert new_only.code == 0, new_only.err

    await Attacker(db).edit_actor(2)
    precise = await pimbot("audit", "verify", PIMBOT_AUDIT_KEY_PREVIOUS=old)
    assert _broken_at(precise.err) == 2
    without_old = await pimbot("audit", "verify")
    assert without_old.code == 1, "the rotation event's MAC vouched for the old events"
    assert _broken_at(without_old.err) == 1  # somewhere among the events under the old key


async def test_rotation_refuses_a_broken_chain(pimbot: Pimbot, db: Database) -> None:
    await Attacker(db).delete_from(EVENTS)
    done = await pimbot("audit", "rotate-key", "--new-key", "-", stdin=generate_key())
    assert done.code == 1
    assert "audit key not rotated" in done.err


async def _an_unkeyed_log(db: Database, count: int) -> None:
    """The log as pimbot wrote it before 0004: SHA-256 only, no key id, no MAC."""
    from alembic import command
    from sqlalchemy import text

    from pimbot.store.audit_crypto import GENESIS_HASH, event_hash
    from pimbot.store.migrate import alembic_config

    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
    prev = GENESIS_HASH
    insert = text("INSERT INTO audit_events (seq, at, actor, action, subject, outcome, detail, "
                  "prev_hash, hash) VALUES (:seq, :at, :actor, 'legacy.event', '', 'ok', "
                  "'{}', :prev, :hash)")
    async with db.engine.begin() as conn:
        for seq in range(1, count + 1):
            at = T0 + timedelta(minutes=seq)
            digest = event_hash(seq=seq, at=at, actor="old@example.com", action="legacy.event",
                                subject="", outcome="ok", detail={}, prev_hash=prev)
            await conn.execute(insert, {"seq": seq, "at": at, "actor": "old@example.com",
                                        "prev": prev, "hash": digest})
            prev = digest


async def test_an_upgraded_unkeyed_log_is_sealed_by_a_checkpoint(
    db: Database, tmp_path: Path
) -> None:
    await _an_unkeyed_log(db, 4)
    bot = pimbot_for(tmp_path, db.url)
    unsealed = await bot("audit", "verify")  # migrates, but writes nothing
    assert unsealed.code == 1
    assert "events 1..4 carry no MAC" in unsealed.err and "pimbot db upgrade" in unsealed.err

    assert (await bot("db", "upgrade")).code == 0  # seals events 1..4 with a checkpoint
    sealed = await bot("audit", "verify")
    assert sealed.code == 0, sealed.err
    await bot.write_events(3)  # keyed from event 5 on
    grown = await bot("audit", "verify")
    assert grown.code == 0, grown.err
    assert grown.out.startswith("audit log intact: 7 events")

    await Attacker(db).edit_actor(2)  # an old event, the whole chain recomputed
    edited = await bot("audit", "verify")
    assert edited.code == 1
    assert _broken_at(edited.err) <= 2  # old events have no MAC of their own to name them


async def test_an_unkeyed_event_after_the_seal_is_refused(db: Database, tmp_path: Path) -> None:
    await _an_unkeyed_log(db, 4)
    bot = pimbot_for(tmp_path, db.url)
    assert (await bot("db", "upgrade")).code == 0
    await bot.write_events(3)
    await Attacker(db, strip_macs=True).edit_actor(6)
    done = await bot("audit", "verify")
    assert done.code == 1
    assert _broken_at(done.err) == 6
    assert "carries no MAC although the events before it do" in done.err


async def test_a_repeated_key_hiding_an_event_from_audit_queries_is_named(
    db: Database, tmp_path: Path
) -> None:
    from pimbot.store.audit_search import search_events

    bot = pimbot_for(tmp_path, db.url)
    victim = "bob@example.com"
    await bot.write_events(6, detail={"user": victim})
    await Attacker(db).repeat_key(4, "user", decoy="decoy@example.com")
    if db.is_sqlite:  # what the attack is for: SQLite's ->> reads the first "user"
        shown = {event.seq for event in await search_events(db, subject=victim)}
        assert 4 not in shown and 5 in shown
    done = await bot.process("audit", "verify")
    assert done.code == 1, done.out
    assert _broken_at(done.err) == 4
    assert "detail is not the JSON pimbot wrote" in done.err
