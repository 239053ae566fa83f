"""MFA in Teams: enrolment only in personal chat (QR code inside the card, key for manual
entry, never stored), and a role with ``require_mfa`` cannot be activated — nor approved,
when approvers need MFA — without a valid code."""

from __future__ import annotations

import pyotp
from fake_connector import FakeBotFramework
from policies import POLICY
from sqlalchemy import select
from teams_driver import ALICE, BOB, CAROL
from teams_rig import KEY, Rig, answers, buttons, card_text, running

from pimbot.store.database import Database
from pimbot.store.tables import TeamsCardRow

VAULT = "activate vault-root for 1h reason rotate the root token"


def vault(code: str) -> str:
    return f"activate vault-root for 1h code {code} reason rotate the root token"


async def stored_cards(rig: Rig) -> list[str]:
    async with rig.db.read() as session:
        return [str(r.card) for r in (await session.execute(select(TeamsCardRow))).scalars()]


async def test_enrolment_shows_the_qr_in_the_card_and_deletes_it_once_confirmed(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB)
        mark = len(fake_teams.calls)
        told = await rig.say(BOB, "mfa enroll")
        assert any("direct message" in t for t in told), told
        (posted,) = [c for c in fake_teams.calls[mark:] if c.method == "POST"
                     and "Key: " in str(c.body)]
        card = posted.body["attachments"][0]["content"]
        images = [e for e in card["body"] if e["type"] == "Image"]
        assert len(images) == 1 and images[0]["url"].startswith("data:image/png;base64,")
        found = KEY.search(card_text(card))
        assert found, card_text(card)
        assert all("Key: " not in c and "data:image" not in c for c in await stored_cards(rig))

        totp = pyotp.TOTP(found.group(1))
        told = await rig.say(BOB, f"mfa confirm {rig.code(totp)}")
        assert any("confirmed" in t for t in told), told
        (deleted,) = [c for c in fake_teams.calls if c.method == "DELETE"]
        assert deleted.path.endswith(f"/{BOB.chat}/activities/{posted.answer['id']}")
        assert deleted.authorization.startswith("Bearer ")
        assert not any("Key: " in str(a) for a in fake_teams.activities.values()), \
            "the key is gone from the chat"


async def test_enrolment_in_a_channel_is_refused(db: Database,
                                                 fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        activity = rig.driver.mention(BOB, "pim mfa enroll")
        await rig.driver.post(activity)
        await rig.settle()
        told = answers(fake_teams, "a:created-" + BOB.user_id, 0)  # the answer: his chat
        assert any("direct message" in t for t in told), told
        assert not any("Key: " in str(a) for a in fake_teams.activities.values())


async def test_require_mfa_needs_a_valid_code_in_teams(db: Database,
                                                       fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        totp = await rig.enrol(BOB)

        told = await rig.say(BOB, VAULT)
        assert await rig.requests() == [], "no code: the form asks for one, nothing changes"
        form_id, form = rig.latest_card(BOB)
        assert any(e.get("id") == "code" for e in form["body"]), told
        assert buttons(form)["Activate"][0] == "pimSubmitActivation"

        told = await rig.say(BOB, vault(rig.wrong_code(totp)))
        assert await rig.requests() == [], told
        assert any("code" in t.lower() for t in told), told

        wrong = await rig.press(BOB, "pimSubmitActivation",
                                {"id": "vault-root", "role": "vault-root", "duration": "1h",
                                 "reason": "rotate", "code": rig.wrong_code(totp)}, form_id)
        assert wrong["type"] == "application/vnd.microsoft.activity.message", wrong
        assert await rig.requests() == []

        right = await rig.press(BOB, "pimSubmitActivation",
                                {"id": "vault-root", "role": "vault-root", "duration": "1h",
                                 "reason": "rotate", "code": rig.code(totp)}, form_id)
        assert right["type"] == "application/vnd.microsoft.card.adaptive", right
        assert [r.state for r in await rig.requests()] == ["pending_approval"]


async def test_approval_step_up_asks_the_approver_for_a_code(
        db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE, CAROL)
        bob = await rig.enrol(BOB)
        alice = await rig.enrol(ALICE)
        await rig.say(BOB, vault(rig.code(bob)))
        (request,) = await rig.requests()
        card_id, _ = rig.latest_card(ALICE)
        form = await rig.press(ALICE, "pimApprove", {"id": request.id}, card_id)
        ids = [e["id"] for e in form["value"]["body"] if e["type"].startswith("Input.")]
        assert "code" in ids, form
        verb = form["value"]["actions"][0]["verb"]
        assert verb == "pimSubmitApprove"
        refused = await rig.press(ALICE, verb, {"id": request.id, "code": rig.wrong_code(alice)},
                               card_id)
        assert refused["type"] == "application/vnd.microsoft.activity.message"
        assert [r.state for r in await rig.requests()] == ["pending_approval"]
        done = await rig.press(ALICE, verb, {"id": request.id, "code": rig.code(alice)}, card_id)
        assert done["type"] == "application/vnd.microsoft.card.adaptive"
        assert [(c.email, c.role) for c in rig.provider.actions("grant")] == \
            [(BOB.email, "vault-root")]
