"""Where checkpoints go and when: the file beside the key, an https receiver, ``pimbot run``.

The receiver is a local aiohttp server on 127.0.0.1 (``http://`` is allowed to loopback only);
pimbot runs as a real process so the receiver keeps answering on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from audit_attacks import Attacker
from audit_cli import pimbot_for
from pimbot.secretbox import generate_key
from pimbot.store.audit_checkpoint import parse_checkpoints
from pimbot.store.audit_log import append_event
from pimbot.store.database import Database
from pimbot.testing.fakes import FakeClock
from pimbot_server.checkpoints import CheckpointWriter, FileCheckpoints, UrlCheckpoints
from pimbot_server.settings import Settings, SettingsError


class Receiver:
    """Keeps every POSTed checkpoint; answers GET with them as JSON lines (unless told not to)."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        self.answers_get = True
        self.up = True
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pimbot/checkpoints"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/pimbot/checkpoints", self._post)
        app.router.add_get("/pimbot/checkpoints", self._get)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        if not self.up:
            return web.Response(status=503)
        assert request.content_type == "application/json"
        self.received.append(await request.json())
        return web.Response(status=201)

    async def _get(self, request: web.Request) -> web.Response:
        if not self.answers_get:
            return web.Response(status=405)
        body = "".join(json.dumps(item) + "\n" for item in self.received)
        return web.Response(text=body, content_type="application/x-ndjson")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def test_checkpoints_are_posted_to_a_url_and_read_back_by_verify(
    db: Database, tmp_path: Path, receiver: Receiver
) -> None:
    bot = pimbot_for(tmp_path, db.url, PIMBOT_AUDIT_CHECKPOINT=receiver.url)
    applied = await bot.process("policy", "apply")
    assert applied.code == 0, applied.err
    assert [c["head_seq"] for c in receiver.received] == [3]
    intact = await bot.process("audit", "verify")
    assert intact.code == 0, intact.err
    assert f"at http://127.0.0.1:{receiver.port}/pimbot/checkpoints" in intact.out

    await Attacker(db).delete_from(3)
    truncated = await bot.process("audit", "verify")
    assert truncated.code == 1
    assert "audit log broken at event 3: the log ends at event 2" in truncated.err

    receiver.answers_get = False  # a POST-only receiver: hand verify what it received
    refused = await bot.process("audit", "verify")
    assert refused.code == 1 and "--checkpoint FILE" in refused.err
    saved = tmp_path / "received.jsonl"
    saved.write_text("".join(json.dumps(c) + "\n" for c in receiver.received))
    offline = await bot.process("audit", "verify", "--checkpoint", str(saved))
    assert offline.code == 1 and "the log ends at event 2" in offline.err


async def test_pimbot_run_checkpoints_at_start_and_at_shutdown(
    db: Database, tmp_path: Path, receiver: Receiver
) -> None:
    bot = pimbot_for(tmp_path, db.url, PIMBOT_AUDIT_CHECKPOINT=receiver.url)
    script = "as bob@example.com\nactivate prod-db-admin for 1h reason checkpoint test\n"
    ran = await bot.process("run", stdin=script)
    assert ran.code == 0, ran.err
    heads = [c["head_seq"] for c in receiver.received]
    assert heads[0] == 3 and heads[-1] == 4, heads  # the policy, then the activation request
    assert (await bot.process("audit", "verify")).code == 0

    await Attacker(db).delete_from(4)
    done = await bot.process("audit", "verify")
    assert done.code == 1
    assert "broken at event 4" in done.err and "were removed" in done.err


async def test_the_default_is_a_file_beside_the_development_key_file(tmp_path: Path) -> None:
    database = tmp_path / "pimbot.db"
    bot = pimbot_for(tmp_path, f"sqlite+aiosqlite:///{database}", PIMBOT_SECRET_KEY="",
                     PIMBOT_AUDIT_KEY="", PIMBOT_AUDIT_CHECKPOINT="")
    ran = await bot.process("run", stdin="as bob@example.com\nactivate prod-db-admin for 1h "
                                         "reason default files\n")
    assert ran.code == 0, ran.err
    assert (tmp_path / "pimbot.db.key").exists()
    checkpoints = tmp_path / "pimbot.db.audit-checkpoints.jsonl"
    assert len(checkpoints.read_text().splitlines()) >= 2
    assert checkpoints.stat().st_mode & 0o777 == 0o600, "readable by pimbot's user only"
    assert (await bot.process("audit", "verify")).code == 0

    rotated = await bot("mfa", "rotate-key", "--new-key", "-", stdin=generate_key())
    assert rotated.code == 0, rotated.err
    assert "the audit key derived from it changed too" in rotated.out
    after = await bot.process("audit", "verify")  # under the key derived from the new one
    assert after.code == 0, after.err


async def test_a_checkpoint_destination_must_be_a_path_or_an_https_url(tmp_path: Path) -> None:
    for bad in ("http://audit.example.com/cp", "ftp://audit.example.com/cp", "https://"):
        with pytest.raises(SettingsError, match="PIMBOT_AUDIT_CHECKPOINT must be"):
            Settings.from_env({"PIMBOT_AUDIT_CHECKPOINT": bad})
    for good in ("https://audit.example.com/cp?token=x", "http://127.0.0.1:9/cp", "/var/cp"):
        assert Settings.from_env({"PIMBOT_AUDIT_CHECKPOINT": good}).audit_checkpoint == good
    bot = pimbot_for(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                     PIMBOT_AUDIT_CHECKPOINT="http://audit.example.com/cp")
    done = await bot("audit", "verify")
    assert done.code == 1 and "https://" in done.err


async def test_the_writer_follows_the_head_and_survives_a_receiver_that_is_down(
    db: Database, tmp_path: Path, receiver: Receiver
) -> None:
    clock = FakeClock()
    file = FileCheckpoints(tmp_path / "cp.jsonl")
    writer = CheckpointWriter(db, file, clock, interval=0.2, settle=0.01, min_gap=0.05)
    await writer.start()
    await _append(db, clock, 1)
    await _until(lambda: _heads(file) == [0, 1])  # woken by the commit
    replica = Database(db.url, audit_keyring=db.audit_keyring)
    try:
        await _append(replica, clock, 2)  # another process: seen at the next interval
        await _until(lambda: _heads(file)[-1] == 2)
    finally:
        await replica.dispose()
    await _append(db, clock, 3)
    await writer.stop()
    assert _heads(file)[-1] == 3
    found = parse_checkpoints(file.path.read_text().splitlines(keepends=True), db.audit_keyring)
    assert not found.damaged and len(found.authentic) == len(_heads(file))

    receiver.up = False
    remote = CheckpointWriter(db, UrlCheckpoints(receiver.url), clock, interval=0.1,
                              settle=0.01, min_gap=0.05)
    await remote.start()  # a 503 is logged, never raised
    assert receiver.received == []
    receiver.up = True
    await _append(db, clock, 4)
    await _until(lambda: [c["head_seq"] for c in receiver.received] == [4])
    await remote.stop()


async def test_stopping_never_waits_out_the_pause_between_checkpoints(
    db: Database, tmp_path: Path
) -> None:
    clock = FakeClock()
    file = FileCheckpoints(tmp_path / "cp.jsonl")
    writer = CheckpointWriter(db, file, clock, settle=30, min_gap=30)
    await writer.start()
    await _append(db, clock, 1)
    await asyncio.sleep(0.05)  # the loop is now pausing for 30 s
    async with asyncio.timeout(3):
        await writer.stop()
    assert _heads(file) == [0, 1]  # the shutdown checkpoint has the last event


async def _append(db: Database, clock: FakeClock, n: int) -> None:
    async with db.transaction() as session:
        await append_event(db, session, at=clock.now(), actor="a@example.com",
                           action="test.event", subject=f"n{n}")


def _heads(store: FileCheckpoints) -> list[int]:
    if not store.path.exists():
        return []
    return [json.loads(line)["head_seq"] for line in store.path.read_text().splitlines()]


async def _until(condition: Callable[[], bool]) -> None:
    """Poll what the writer wrote (a file, a receiver's list) for up to 5 seconds."""
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the checkpoint did not arrive within 5 seconds")


async def test_the_audit_key_is_never_logged_stored_or_exported(
    db: Database, tmp_path: Path
) -> None:
    bot = pimbot_for(tmp_path, db.url)
    key = bot.env["PIMBOT_AUDIT_KEY"]
    new_key = generate_key()
    outputs = [
        await bot.process("-v", "run", stdin="as bob@example.com\nactivate prod-db-admin "
                                             "for 1h reason key check\n"),
        await bot.process("-v", "audit", "verify"),
        await bot.process("-v", "audit", "rotate-key", "--new-key", "-", stdin=new_key),
        await bot.process("audit", "export", PIMBOT_AUDIT_KEY=new_key),
        await bot.process("audit", "export", "--format", "csv", PIMBOT_AUDIT_KEY=new_key),
    ]
    assert all(done.code == 0 for done in outputs), [done.err for done in outputs]
    raw = {_raw_hex(k) for k in (key, new_key)}
    stored = bot.checkpoint_file.read_text()
    for text in [stored, *(done.out + done.err for done in outputs)]:
        for secret in (key, new_key, *raw):
            assert secret not in text
    from pimbot.store.audit_crypto import AuditKeyring, load_audit_key

    assert key not in repr(AuditKeyring(load_audit_key(key)))


def _raw_hex(key: str) -> str:
    import base64

    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).hex()
