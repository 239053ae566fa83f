"""An activation that expires while pimbot is stopped is revoked when it starts again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from console_process import run_console
from webhook_receiver import WebhookReceiver

BOB = "bob@example.com"


async def test_an_activation_that_expired_while_stopped_is_revoked_at_start(
    tmp_path: Path, hook_env: dict[str, str], receiver: WebhookReceiver
) -> None:
    first = await run_console(
        tmp_path, f"as {BOB}\nactivate staging-deploy for 2s reason quick look\n", hook_env
    )
    assert first.code == 0, first.err
    [request] = first.request_ids()
    assert receiver.changes() == [("grant", BOB, "staging-deploy", request)]
    assert receiver.of("revoke") == [], "run 1 outlived the activation: nothing left to prove"

    expires = datetime.fromisoformat(receiver.of("grant")[0].body["expires_at"])
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)

    second = await run_console(tmp_path, "", hook_env)  # no input: start, catch up, stop
    assert second.code == 0, second.err
    assert receiver.changes() == [
        ("grant", BOB, "staging-deploy", request),
        ("revoke", BOB, "staging-deploy", request),
    ]
    [revoke] = receiver.of("revoke")
    assert revoke.signature_ok and revoke.idempotency_ok
    assert second.started < revoke.arrived < second.ended  # sent by run 2, before it exited
    print(
        f"\nrestart: run 1 exited {first.ended - receiver.of('grant')[0].arrived:.2f}s after the "
        f"grant; run 2's revoke arrived {revoke.arrived - second.started:.2f}s after it was "
        f"spawned, and it exited after {second.ended - second.started:.2f}s"
    )
