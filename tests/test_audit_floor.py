"""The retention floor, attacked through ``pimbot audit verify`` and ``pimbot audit purge``.

The attacker can write the database (``audit_attacks.Attacker``) and read checkpoint lines
(they are not secret: the file was world-readable, a receiver answers GET to anyone), but has
no audit key. A floor counts only when the ``audit.purged`` event pimbot wrote beside it is
still in the chain after it; floors are MACed apart from checkpoints. Every test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from audit_attacks import FLOOR_SETTING, Attacker
from audit_cli import Pimbot, pimbot_for
from pimbot.store.audit_checkpoint import ChainHead, seal_checkpoint
from pimbot.store.audit_crypto import AuditKey, load_audit_key
from pimbot.store.database import Database
from pimbot.store.tables import SettingRow

BEFORE_EVENT_6 = "2026-11-02 09:05"  # audit_cli writes event n+1 at T0 + n minutes


@pytest.fixture
def pimbot(db: Database, tmp_path: Path) -> Pimbot:
    return pimbot_for(tmp_path, db.url)


async def _floor(db: Database) -> dict[str, Any] | None:
    async with db.read() as session:
        row = await session.get(SettingRow, FLOOR_SETTING)
    return None if row is None else dict(row.value)


@pytest.mark.parametrize("kept", [0, 2], ids=["everything", "all-but-two"])
async def test_a_checkpoint_line_planted_as_the_floor_hides_nothing(
    pimbot: Pimbot, db: Database, kept: int
) -> None:
    await pimbot.write_events(8 - kept)  # one checkpoint line after these ...
    if kept:
        await pimbot.write_events(kept, start=8 - kept)  # ... and one after the rest
    first_line = pimbot.checkpoint_file.read_text(encoding="utf-8").splitlines()[0]
    hidden = await Attacker(db).plant_floor(first_line)
    assert hidden == 8 - kept

    done = await pimbot.process("audit", "verify")
    assert done.code == 1, done.out
    assert f"audit log broken at event {hidden}:" in done.err
    assert "no audit.purged event" in done.err and "retention floor" in done.err

    purge = await pimbot("audit", "purge", "--before", BEFORE_EVENT_6)
    assert purge.code == 1 and "nothing purged" in purge.err  # nor re-sealed under the key
    assert (await _floor(db)) == json.loads(first_line)
    assert (await pimbot("audit", "verify")).code == 1


async def test_a_planted_floor_with_a_forged_purge_event_is_refused_once_vouched_for(
    pimbot: Pimbot, db: Database
) -> None:
    await pimbot.write_events(8)
    line = pimbot.checkpoint_file.read_text(encoding="utf-8").splitlines()[-1]
    hidden = await Attacker(db).plant_floor(line)
    forger = Attacker(db, key=AuditKey(secrets.token_bytes(32)))
    await forger.forge_event(hidden + 1, json.loads(line)["head_hash"], "audit.purged",
                             {"through_seq": hidden, "before": "2026-11-03T00:00:00.000000Z"})
    await pimbot.write_events(1, start=8)  # pimbot's next event MACs over the forged one

    done = await pimbot.process("audit", "verify")
    assert done.code == 1, done.out
    assert f"audit log broken at event {hidden}:" in done.err
    assert "no audit.purged event" in done.err
    purge = await pimbot("audit", "purge", "--before", BEFORE_EVENT_6)
    assert purge.code == 1 and "nothing purged" in purge.err


async def test_a_purge_by_pimbot_verifies_and_its_floor_is_no_checkpoint(
    pimbot: Pimbot, db: Database
) -> None:
    await pimbot.write_events(8)
    purge = await pimbot("audit", "purge", "--before", BEFORE_EVENT_6)
    assert purge.code == 0, purge.err
    assert "the log now starts after event 5" in purge.out
    done = await pimbot.process("audit", "verify")
    assert done.code == 0, done.err
    assert done.out.startswith("audit log intact: 4 events; head 9:")  # 6, 7, 8, the purge

    floor = await _floor(db)
    assert floor is not None and floor["head_seq"] == 5
    as_checkpoint = {k: v for k, v in floor.items() if k != "kind"}  # MACed apart: refused
    pimbot.checkpoint_file.write_text(json.dumps(as_checkpoint) + "\n", encoding="utf-8")
    copied = await pimbot("audit", "verify")
    assert copied.code == 1 and "does not match its MAC" in copied.err
    assert floor["kind"] == "floor"


async def test_a_floor_sealed_before_floors_had_their_own_mac_verifies_and_is_resealed(
    pimbot: Pimbot, db: Database
) -> None:
    await pimbot.write_events(8)
    assert (await pimbot("audit", "purge", "--before", BEFORE_EVENT_6)).code == 0
    floor = await _floor(db)
    assert floor is not None
    key = load_audit_key(pimbot.env["PIMBOT_AUDIT_KEY"])
    old = seal_checkpoint(key, ChainHead(floor["head_seq"], floor["head_hash"],
                                         floor["head_mac"]), floor["keyed_from"], _at(floor))
    await Attacker(db).plant_floor(old.to_json())  # what pimbot 0.x stored (deletes nothing)

    assert (await pimbot.process("audit", "verify")).code == 0, "its audit.purged event is there"
    assert (await pimbot("audit", "purge", "--before", BEFORE_EVENT_6)).code == 0
    resealed = await _floor(db)
    assert resealed is not None and resealed["kind"] == "floor" and resealed["head_seq"] == 5
    done = await pimbot.process("audit", "verify")
    assert done.code == 0, done.err


def _at(floor: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(floor["at"].replace("Z", "+00:00"))
