"""Approval rules: on-call auto-approval against local PagerDuty and Opsgenie fakes, time
windows, usage caps and escalation, on a fake clock; every automatic decision audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta, timezone

import pytest
from sqlalchemy import select

from oncall_fakes import FakeOnCall, OnCallShift
from pimbot.oncall import build_oncall_sources
from pimbot.policy import PolicyError, parse_policy
from pimbot.policy.plan import apply_policy, format_plan, plan_policy
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, RequestRow
from pimbot.testing.fakes import FakeClock, RecordingChatGateway, RecordingProvider
from pimbot.ui.cards import ActionId
from pimbot.workflow.core import PimCore

from .harness import Pim, request_id_of

BOB, ALICE, DAVE = "bob@example.com", "alice@example.com", "dave@example.com"

POLICY = """
admins: [sec-lead@example.com]
groups:
  dba-leads: [alice@example.com, carol@example.com]
  sre-leads: [dave@example.com]
providers:
  demo: {{type: noop}}
oncall:
  pagerduty: {{token_env: PD_TOKEN, api_url: "{url}"}}
  opsgenie: {{token_env: OG_TOKEN, api_url: "{url}"}}
roles:
  prod-db-admin:
    provider: demo
    max_duration: 4h
    require_justification: false
    approval: {{required: true, approvers: [group:dba-leads]}}
    auto_approve: {{on_call: "pagerduty:PSCHED1", max_duration: 1h, end_with_shift: true}}
    escalate: [{{after: 30m, to: [group:sre-leads]}}]
    notify: ["#sec-alerts"]
  og-role:
    provider: demo
    require_justification: false
    approval: {{required: true, approvers: [group:dba-leads]}}
    auto_approve: {{on_call: "opsgenie:OGS1"}}
  office-hours:
    provider: demo
    require_justification: false
    approval: {{required: true, approvers: [group:dba-leads]}}
    auto_approve: {{windows: ["Mon-Fri 09:00-18:00 Europe/Berlin"]}}
  freeze:
    provider: demo
    require_justification: false
    approval: {{required: true, approvers: [group:dba-leads]}}
    auto_approve: {{outside: ["Mon 00:00-12:00 UTC"]}}
  capped:
    provider: demo
    require_justification: false
    approval: {{required: false, approvers: [group:dba-leads]}}
    max_activations: {{count: 3, per: 7d}}
assignments:
  - {{user: bob@example.com, role: prod-db-admin, type: eligible}}
  - {{user: bob@example.com, role: og-role, type: eligible}}
  - {{user: bob@example.com, role: office-hours, type: eligible}}
  - {{user: bob@example.com, role: freeze, type: eligible}}
  - {{user: bob@example.com, role: capped, type: eligible}}
"""


@pytest.fixture
async def oncall() -> AsyncIterator[FakeOnCall]:
    fake = FakeOnCall(token="secret-token")
    await fake.start()
    yield fake
    await fake.stop()


async def rules_pim(db: Database, fake: FakeOnCall, token: str = "secret-token") -> Pim:
    policy = parse_policy(POLICY.format(url=fake.url))
    clock = FakeClock()  # Monday 2026-11-02 09:00 UTC (10:00 in Berlin)
    await apply_policy(db, policy, clock)
    provider = RecordingProvider()
    sources = build_oncall_sources(policy.oncall, {"PD_TOKEN": token, "OG_TOKEN": token})
    core = PimCore(db, policy, {"demo": provider}, clock, oncall=sources)
    chat = RecordingChatGateway()
    core.add_gateway(chat)
    return Pim(core, clock, provider, chat)


def shift(fake: FakeOnCall, pim: Pim, email: str, *, schedule: str = "PSCHED1",
          ends_in: timedelta = timedelta(minutes=30)) -> None:
    now = pim.clock.now()
    berlin = timezone(timedelta(hours=1))  # the API answers in the schedule's zone
    fake.shifts.append(OnCallShift(schedule, email, (now - timedelta(hours=8)).astimezone(
        berlin), (now + ends_in).astimezone(berlin)))


async def _events(db: Database, action: str) -> list[AuditEventRow]:
    async with db.read() as session:
        return list((await session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == action).order_by(AuditEventRow.seq))).all())


async def _state(db: Database, request_id: str) -> str:
    async with db.read() as session:
        row = await session.get(RequestRow, request_id)
    assert row is not None
    return row.state


async def test_on_call_is_approved_at_once_and_revoked_when_the_shift_ends(
        db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    shift(oncall, pim, BOB, ends_in=timedelta(minutes=30))
    reply = await pim.say(BOB, "activate prod-db-admin for 1h")
    rid = request_id_of(reply)
    assert await _state(db, rid) == "active", reply.text
    assert len(pim.provider.actions("grant")) == 1
    [event] = await _events(db, "request.auto_approved")
    assert event.actor == "rule:auto_approve.on_call"
    assert event.detail["evidence"]["schedule"] == "pagerduty:PSCHED1"
    assert event.detail["evidence"]["shift_end"].startswith("2026-11-02T09:30:00")
    notice = [c for c in pim.cards_to("channel:slack:#sec-alerts") if "by a rule" in c.title]
    assert notice and "on call on pagerduty:PSCHED1" in notice[0].text
    auth = oncall.requests[0]["auth"]
    assert auth == "Token token=secret-token"
    await pim.advance(timedelta(minutes=30))
    assert len(pim.provider.actions("revoke")) == 1, "access ended with the shift"


async def test_someone_not_on_call_waits_for_a_human(db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    shift(oncall, pim, ALICE)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h"))
    assert await _state(db, rid) == "pending_approval"
    card = pim.cards_to(f"user:{ALICE}")[-1]
    rule = [f.value for f in card.fields if f.label == "Rule"]
    assert rule == ["not on call on pagerduty:PSCHED1: a human decides"], card.fields
    await pim.click(ALICE, ActionId.APPROVE, rid)
    assert await _state(db, rid) == "active"


@pytest.mark.parametrize("trouble", ["down", "bad token"])
async def test_the_source_failing_means_a_human_decides(
        db: Database, oncall: FakeOnCall, trouble: str) -> None:
    pim = await rules_pim(db, oncall, token="wrong" if trouble == "bad token" else
                          "secret-token")
    oncall.down = trouble == "down"
    shift(oncall, pim, BOB)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h"))
    assert await _state(db, rid) == "pending_approval", "the rule fails closed"
    card = pim.cards_to(f"user:{ALICE}")[-1]
    rule = next(f.value for f in card.fields if f.label == "Rule")
    assert "on-call source unavailable" in str(rule) and "a human decides" in str(rule)
    assert pim.provider.actions("grant") == []


async def test_a_rate_limit_is_waited_out_and_pages_are_followed(
        db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    oncall.page_size = 2
    for n in range(5):
        shift(oncall, pim, f"other{n}@example.com")
    shift(oncall, pim, BOB)  # on the third page
    oncall.throttle_next = 1
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 30m"))
    assert await _state(db, rid) == "active"
    offsets = [dict(r["query"]).get("offset") for r in oncall.requests]
    assert offsets == ["0", "0", "2", "4"], offsets  # a 429, then three pages


async def test_a_request_longer_than_the_rule_allows_goes_to_a_human(
        db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    shift(oncall, pim, BOB, ends_in=timedelta(hours=3))
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 2h"))
    assert await _state(db, rid) == "pending_approval"


async def test_opsgenie_on_call_is_approved(db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    shift(oncall, pim, BOB, schedule="OGS1", ends_in=timedelta(hours=2))
    rid = request_id_of(await pim.say(BOB, "activate og-role for 1h"))
    assert await _state(db, rid) == "active"
    assert oncall.requests[-1]["auth"] == "GenieKey secret-token"


async def test_time_windows_in_the_roles_zone(db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    inside = request_id_of(await pim.say(BOB, "activate office-hours for 1h"))
    assert await _state(db, inside) == "active", "Monday 10:00 in Berlin"
    await pim.say(BOB, "deactivate office-hours")
    pim.clock.advance(timedelta(hours=8, minutes=1))  # 18:01 in Berlin
    late = request_id_of(await pim.say(BOB, "activate office-hours for 1h"))
    assert await _state(db, late) == "pending_approval"
    frozen = request_id_of(await pim.say(BOB, "activate freeze for 1h"))  # 17:01 UTC Monday
    assert await _state(db, frozen) == "active", "outside the freeze window"
    [event] = [e for e in await _events(db, "request.auto_approved")
               if e.detail["request"] == frozen]
    assert event.detail["rule"] == "auto_approve.outside"


async def test_usage_cap_needs_approval_again(db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    for _ in range(3):
        rid = request_id_of(await pim.say(BOB, "activate capped for 10m"))
        assert await _state(db, rid) == "active"
        await pim.say(BOB, "deactivate capped")
    fourth = request_id_of(await pim.say(BOB, "activate capped for 10m"))
    assert await _state(db, fourth) == "pending_approval"
    card = pim.cards_to(f"user:{ALICE}")[-1]
    assert any("3 activations in the last 7d" in str(f.value) for f in card.fields)
    pim.clock.advance(timedelta(days=7, minutes=1))
    await pim.say(BOB, f"cancel {fourth}")
    later = request_id_of(await pim.say(BOB, "activate capped for 10m"))
    assert await _state(db, later) == "active", "the old activations fell out of the window"


async def test_escalation_asks_the_next_approvers(db: Database, oncall: FakeOnCall) -> None:
    pim = await rules_pim(db, oncall)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h"))  # not on call
    early = await pim.click(DAVE, ActionId.APPROVE, rid)
    assert not early.ok and "not an approver" in early.text
    assert pim.cards_to(f"user:{DAVE}") == []
    assert DAVE not in await pim.core.deciders(rid)
    await pim.advance(timedelta(minutes=30))
    assert pim.cards_to(f"user:{DAVE}"), "the sre-leads were asked"
    assert DAVE in await pim.core.deciders(rid), "who may decide follows the escalation"
    alice_card = pim.cards_to(f"user:{ALICE}")[-1]
    assert any(f.label == "Escalated" and "group:sre-leads" in str(f.value)
               for f in alice_card.fields), alice_card.fields
    [event] = await _events(db, "request.escalated")
    assert event.detail["approvers"] == [DAVE]
    done = await pim.click(DAVE, ActionId.APPROVE, rid)
    assert done.ok, done.text
    assert await _state(db, rid) == "active"


async def test_an_escalation_approver_finds_the_request_in_pending_once_it_escalates(
        db: Database, oncall: FakeOnCall) -> None:
    """``pending`` lists what the person may decide now: an escalation step's approvers see a
    request there from the moment it reaches them (not before), and a bare ``approve`` hints
    its id, as it does for any approver."""
    pim = await rules_pim(db, oncall)
    rid = request_id_of(await pim.say(BOB, "activate prod-db-admin for 1h"))  # not on call
    assert rid not in (await pim.say(DAVE, "pending")).text
    await pim.advance(timedelta(minutes=30))
    waiting = await pim.say(DAVE, "pending")
    assert rid in waiting.text and BOB in waiting.text, waiting.text
    assert rid in (await pim.say(ALICE, "pending")).text, "the first approvers still see it"
    bare = await pim.say(DAVE, "approve")
    assert not bare.ok and bare.hint.startswith(f"approve {rid}"), bare
    done = await pim.say(DAVE, f"approve {rid}")
    assert done.ok, done.text
    assert await _state(db, rid) == "active"
    assert rid not in (await pim.say(DAVE, "pending")).text


async def test_policy_plan_and_validate_speak_of_the_rules(
        db: Database, oncall: FakeOnCall) -> None:
    text = format_plan(await plan_policy(db, parse_policy(POLICY.format(url=oncall.url))))
    assert "auto-approve people on call on pagerduty:PSCHED1 (up to 1h), ends with the shift" \
        in text, text
    assert "approval after 3 activations per 7d" in text
    assert "escalate to group:sre-leads after 30m" in text
    broken = POLICY.format(url=oncall.url).replace(
        '"Mon-Fri 09:00-18:00 Europe/Berlin"', '"Mon-Fri 09:00-18:00 Mars/Olympus"').replace(
        "group:sre-leads]", "group:nobody]").replace('  opsgenie: {token_env: OG_TOKEN, '
                                                     f'api_url: "{oncall.url}"}}\n', "")
    with pytest.raises(PolicyError) as raised:
        parse_policy(broken)
    problems = str(raised.value)
    assert "roles.office-hours.auto_approve.windows[0]" in problems
    assert "'Mars/Olympus' is not a time zone" in problems
    assert "roles.prod-db-admin.escalate[0].to[0]" in problems
    assert "roles.og-role.auto_approve.on_call: opsgenie is not configured" in problems
