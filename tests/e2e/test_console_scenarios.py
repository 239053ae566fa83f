"""The whole PIM flow through ``pimbot run`` on the console, typed as a newcomer would, with a
webhook provider whose receiving end (a local server) checks and records what it is sent.

Each scenario is one ``pimbot run`` process with its own database and receiver. The processes
start at once (one fixture plays them all; each test then asserts on its own scenario), since
most of a run is Python starting up and the machine has more than one core.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import pyotp
import pytest
from console_process import ConsoleProcess, ConsoleRun, open_console
from hook_policy import hook_policy_env
from webhook_receiver import WebhookReceiver

BOB, ALICE, CAROL = "bob@example.com", "alice@example.com", "carol@example.com"

Scenario = Callable[[ConsoleProcess], Awaitable[None]]
SCENARIOS: list[Scenario] = []


def scenario(play: Scenario) -> Scenario:
    SCENARIOS.append(play)
    return play


Outcome = tuple[ConsoleRun, WebhookReceiver]
Played = Callable[[Scenario], Outcome]  # the fixture: a scenario's outcome, or its error


async def _play(play: Scenario, directory: Path) -> Outcome:
    receiver = WebhookReceiver(secrets.token_urlsafe(24))
    await receiver.start()
    try:
        async with open_console(directory, hook_policy_env(directory, receiver)) as console:
            await play(console)
            return await console.finish(), receiver
    finally:
        await receiver.stop()


async def _play_all(root: Path) -> dict[str, Outcome | BaseException]:
    directories = [root / play.__name__ for play in SCENARIOS]
    for directory in directories:
        directory.mkdir()
    outcomes = await asyncio.gather(
        *(_play(play, directory) for play, directory in zip(SCENARIOS, directories, strict=True)),
        return_exceptions=True,
    )
    return {play.__name__: outcome for play, outcome in zip(SCENARIOS, outcomes, strict=True)}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    """Plays every scenario (even when one test is selected), then hands out the outcomes."""
    outcomes = asyncio.run(_play_all(tmp_path_factory.mktemp("scenarios")))

    def outcome(play: Scenario) -> Outcome:
        result = outcomes[play.__name__]
        if isinstance(result, BaseException):
            raise result
        run, _ = result
        assert run.code == 0, run.err
        assert "Traceback" not in run.text + run.err
        return result

    return outcome


def assert_wire_ok(receiver: WebhookReceiver) -> None:
    """Every call was signed with the shared secret and carried ACTIVATION_ID:ACTION."""
    assert receiver.deliveries
    for delivery in receiver.deliveries:
        assert delivery.signature_ok, delivery
        assert delivery.idempotency_ok, delivery


async def request_id_on_next_card(console: ConsoleProcess) -> str:
    """The id a person reads off the next card (``  Request xxxxxx``)."""
    return (await console.read_until("  Request ")).split()[-1]


# --- (a) approval needed: request → approve → grant → deactivate → revoke --------------------


@scenario
async def approve_then_deactivate(console: ConsoleProcess) -> None:
    await console.type(
        f"as {BOB}",
        "activate prod-db-admin for 1h reason restore backup",
        f"as {ALICE}",
        "click 1",
        f"as {BOB}",
        "deactivate prod-db-admin",
    )


def test_an_approved_activation_is_granted_then_revoked_on_deactivate(
    played: Played,
) -> None:
    run, receiver = played(approve_then_deactivate)
    [request] = run.request_ids()
    assert run.card_titles(ALICE) == [f"Activation approval needed: {BOB} → prod-db-admin"]
    run.answer(f"Approved request {request} ({BOB} → prod-db-admin)")
    assert run.card_titles(BOB)[:2] == [
        "Your activation of prod-db-admin: waiting for approval",
        "Your activation of prod-db-admin: active",
    ]
    assert f"Activation request {request}: active" in "\n".join(run.updates(CAROL))
    run.answer("Deactivated prod-db-admin")
    assert receiver.changes() == [
        ("grant", BOB, "prod-db-admin", request),
        ("revoke", BOB, "prod-db-admin", request),
    ]
    grant = receiver.of("grant")[0].body
    assert grant["grant"] == {"role": "app_admin"}
    assert grant["expires_at"] is not None
    assert_wire_ok(receiver)


# --- the MFA enrolment message does not stay on the screen's record ----------------------------


@scenario
async def mfa_enrol_then_confirm(console: ConsoleProcess) -> None:
    await console.type(f"as {BOB}", "mfa enroll")
    key = (await console.read_until("Key: ")).split("Key: ")[1].split()[0]
    await console.type(f"mfa confirm {pyotp.TOTP(key).now()}")
    await console.read_until(f"✗ deleted for {BOB}: Set up your authenticator")


def test_the_mfa_enrolment_message_is_deleted_once_confirmed(played: Played) -> None:
    run, _ = played(mfa_enrol_then_confirm)
    assert run.card_titles(BOB) == [
        "Set up your authenticator",
        "pimbot deleted the message with your authenticator key",
    ]
    run.answer("Your authenticator is confirmed.")
    assert run.text.index("Your authenticator is confirmed.") < run.text.index("✗ deleted for")


# --- (b) no approval needed ------------------------------------------------------------------


@scenario
async def self_service_then_deactivate(console: ConsoleProcess) -> None:
    await console.type(
        f"as {BOB}",
        "activate staging-deploy for 30m reason deploy hotfix",
        "deactivate staging-deploy",
    )


def test_a_self_service_activation_is_granted_at_once_then_revoked_on_deactivate(
    played: Played,
) -> None:
    run, receiver = played(self_service_then_deactivate)
    [request] = run.request_ids()
    assert "Your activation of staging-deploy: active" in run.card_titles(BOB)
    assert not any("approval needed" in line for line in run.out)  # nobody was asked
    run.answer("Deactivated staging-deploy")
    assert receiver.changes() == [
        ("grant", BOB, "staging-deploy", request),
        ("revoke", BOB, "staging-deploy", request),
    ]
    assert receiver.of("grant")[0].body["grant"] == {"group": "staging-deployers"}
    assert_wire_ok(receiver)


# --- (c) a denial ----------------------------------------------------------------------------


@scenario
async def deny_then_approve_late(console: ConsoleProcess) -> None:
    await console.type(f"as {BOB}", "activate prod-db-admin for 1h reason restore", f"as {ALICE}")
    request = await request_id_on_next_card(console)
    await console.type("click 2")  # Deny: the console has no form, so it says what to type
    await console.read_until("needs a reason")
    await console.type(f"deny {request} reason change freeze until friday")
    await console.read_until(f"Denied request {request}")
    await console.type(f"as {CAROL}", f"approve {request}")  # too late: already decided


def test_a_denied_request_is_never_granted_and_stays_denied(played: Played) -> None:
    run, receiver = played(deny_then_approve_late)
    [request] = run.request_ids()
    assert f"try: deny {request} reason" in run.answer("Denying needs a reason")
    run.answer(f"Denied request {request} ({BOB} → prod-db-admin)")
    denied = [card for card in run.cards(BOB) if card[0].endswith(": denied")]
    assert denied == [[
        "Your activation of prod-db-admin: denied",
        "  Denied by alice@example.com",
        "  Role: prod-db-admin",
        "  Duration: 1h",
        "  Reason: “restore”",
        "  Denial reason: “change freeze until friday”",
        f"  Request {request}",
    ]]  # fmt: skip
    assert f"Activation request {request}: denied" in "\n".join(run.updates(CAROL))
    late = run.answer(f"Request {request} was already decided")
    assert "Nothing was changed" in late
    assert receiver.deliveries == []


def test_approving_an_already_decided_request_answers_with_a_hint(played: Played) -> None:
    run, _ = played(deny_then_approve_late)
    [request] = run.request_ids()
    assert "try:" in run.answer(f"Request {request} was already decided")


# --- (d) self-approval refused ---------------------------------------------------------------


@scenario
async def approve_own_request(console: ConsoleProcess) -> None:
    await console.type(f"as {ALICE}", "activate prod-db-admin for 1h reason my own fix")
    request = await request_id_on_next_card(console)
    await console.type(f"approve {request}", "status", "as sec-lead@example.com", f"audit {ALICE}")


def test_approving_your_own_request_is_refused(played: Played) -> None:
    run, receiver = played(approve_own_request)
    [request] = run.request_ids()
    # alice is one of the approvers, but her own request goes to carol only
    assert run.card_titles(CAROL) == [f"Activation approval needed: {ALICE} → prod-db-admin"]
    assert run.card_titles(ALICE) == ["Your activation of prod-db-admin: waiting for approval"]
    run.answer("You cannot approve or deny your own request")
    assert request in run.answer("• prod-db-admin: waiting for approval")  # status: unchanged
    refused = run.answer(f"{ALICE} approval.refused prod-db-admin [refused]")  # the audit log
    assert f"reason=self_approval, request={request}" in refused
    assert receiver.deliveries == []


# --- (e) a request nobody answers times out --------------------------------------------------


@scenario
async def nobody_answers(console: ConsoleProcess) -> None:
    await console.type(
        f"as {BOB}",
        "activate quick-fix for 1h reason hotfix",  # its approval times out after 2s
        "wait 3s",
        "status",
    )


def test_a_request_nobody_answers_times_out_without_a_grant(played: Played) -> None:
    run, receiver = played(nobody_answers)
    [request] = run.request_ids()
    assert run.card_titles(BOB) == [
        "Your activation of quick-fix: waiting for approval",
        "Your activation of quick-fix: timed out",
    ]
    assert f"Activation request {request}: timed out" in "\n".join(run.updates(ALICE))
    run.answer("You have no open requests and no active roles")
    assert receiver.deliveries == []


# --- bad input -------------------------------------------------------------------------------


@scenario
async def bad_input(console: ConsoleProcess) -> None:
    await console.type(
        f"as {BOB}",
        "frobnicate prod-db-admin",
        "activate payroll-admin for 1h reason look around",
        "activate prod-db-admin for 99h reason long job",
        "activate prod-db-admin for 1h",
        "status",
    )


def test_bad_input_gets_a_one_line_answer_with_a_hint_and_changes_nothing(
    played: Played,
) -> None:
    run, receiver = played(bad_input)
    for fragment in (
        "'frobnicate' is not a command",
        "There is no role 'payroll-admin'",
        "over the maximum of 4h for prod-db-admin",
        "prod-db-admin needs a reason",
    ):
        assert "try:" in run.answer(fragment)
    run.answer("You have no open requests and no active roles")
    assert run.request_ids() == []
    assert receiver.deliveries == []
