"""The lifecycle's promises through the real ``pimbot run`` and CLI, against a webhook
receiver that answers both as a membership system and as a per-activation credential system:
overlapping activations leave nothing behind, and a policy change never strands access."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest
from console_process import open_console
from hook_policy import HOOK_POLICY, SECRET_ENV, hook_policy_env
from webhook_receiver import WebhookReceiver

from server_process import pimbot_command

BOB = "bob@example.com"
WAIT = 20.0  # seconds to wait for a delivery before failing (a hang fails, never blocks)


async def _until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _cli(directory: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), *args, cwd=directory, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def _write(path: Path, text: str) -> None:
    await asyncio.to_thread(path.write_text, text, "utf-8")


@pytest.fixture
async def receiver() -> WebhookReceiver:
    hook = WebhookReceiver(secrets.token_urlsafe(24))
    await hook.start()
    yield hook  # type: ignore[misc]
    await hook.stop()


async def test_overlapping_activations_leave_no_credential_behind(
        tmp_path: Path, receiver: WebhookReceiver) -> None:
    env = hook_policy_env(tmp_path, receiver)
    async with open_console(tmp_path, env) as console:
        # A second activation of an active role is refused (extend is the way), so the
        # overlap here is an admin's assignment beside Bob's own activation.
        await console.type(f"as {BOB}", "activate staging-deploy for 3s reason a",
                           "as sec-lead@example.com",
                           "assign bob@example.com staging-deploy active for 1h")
        await _until(lambda: receiver.of("grant"), "the grant")
        await asyncio.sleep(6)  # the activation has expired; the assignment holds access
        assert len(receiver.of("grant")) == 1, receiver.changes()
        assert receiver.of("revoke") == [], "revoked while the assignment held it"
        assert receiver.members == {(BOB, "staging-deploy")}
        await console.type("unassign bob@example.com staging-deploy")
        await _until(lambda: receiver.of("revoke"), "the revoke")
        await console.finish()
    granted = [d.activation_id for d in receiver.of("grant")]
    revoked = [d.activation_id for d in receiver.of("revoke")]
    assert revoked == granted, receiver.changes()
    assert receiver.credentials == {}, "a per-activation credential was never revoked"
    assert receiver.members == set()
    assert all(d.signature_ok and d.idempotency_ok for d in receiver.deliveries)


async def test_a_policy_change_revokes_with_the_recorded_parameters(
        tmp_path: Path, receiver: WebhookReceiver) -> None:
    env = hook_policy_env(tmp_path, receiver)
    policy = Path(env["PIMBOT_POLICY"])
    async with open_console(tmp_path, env) as console:
        await console.type(f"as {BOB}", "activate staging-deploy for 1h reason deploy")
        await _until(lambda: receiver.of("grant"), "the grant")
        await console.finish()
    [granted] = receiver.of("grant")
    assert granted.body["grant"] == {"group": "staging-deployers"}

    # A provider that still backs a grant cannot be removed.
    renamed = HOOK_POLICY.replace("  hooks: ", "  hooks2: ").replace(
        "provider: hooks", "provider: hooks2")
    await _write(policy, renamed.format(url=receiver.url, secret_env=SECRET_ENV))
    code, out = await _cli(tmp_path, env, "policy", "apply")
    assert code == 1 and "providers.hooks: still backs 1 grant" in out, out
    assert BOB in out and "staging-deploy" in out

    # The role's grant changes: plan says what apply will revoke; run applies it at start.
    changed = HOOK_POLICY.replace("grant: {{group: staging-deployers}}",
                                  "grant: {{group: staging-admins}}")
    await _write(policy, changed.format(url=receiver.url, secret_env=SECRET_ENV))
    code, out = await _cli(tmp_path, env, "policy", "plan")
    assert code == 0, out
    assert f"- grant {BOB} staging-deploy (the grant parameters of staging-deploy changed" \
        in out, out
    async with open_console(tmp_path, env) as console:
        await _until(lambda: receiver.of("revoke"), "the revoke at start")
        await console.type(f"as {BOB}", "status")
        run = await console.finish()
    [revoked] = receiver.of("revoke")
    assert revoked.activation_id == granted.activation_id
    assert revoked.body["grant"] == {"group": "staging-deployers"}, "the old membership stays"
    assert receiver.credentials == {} and receiver.members == set()
    assert "grant parameters of staging-deploy changed" in run.text, run.text
