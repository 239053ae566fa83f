"""Every request to /api/messages is authenticated before anything is read or changed.

Tokens are minted with the fake Bot Framework's local RSA key, published as OpenID metadata
and JWKS on a local port (``PIMBOT_TEAMS_OPENID_METADATA_URL``).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import pytest
from fake_connector import APP_ID, ISSUER, FakeBotFramework
from policies import POLICY
from sqlalchemy import func, select
from teams_driver import ALICE, BOB
from teams_rig import Rig, running

from pimbot.domain.errors import PimError
from pimbot.store.database import Database
from pimbot.store.tables import AuditEventRow, PlatformIdentityRow, RequestRow
from pimbot_teams.settings import TeamsSettings


async def nothing_changed(rig: Rig) -> None:
    await rig.settle()
    async with rig.db.read() as session:
        people = await session.scalar(select(func.count()).select_from(PlatformIdentityRow))
        requests = await session.scalar(select(func.count()).select_from(RequestRow))
    assert (people, requests) == (0, 0)
    connector = [c for c in rig.fake.calls if "/teams/v3/" in c.path or "/login/" in c.path]
    assert connector == [], "nothing was sent, nobody was looked up"


def unsigned(rig: Rig) -> str:
    claims = {"serviceurl": rig.fake.service_url, "iss": ISSUER, "aud": APP_ID, "exp": 4e9}
    return jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]


BAD_TOKENS: list[tuple[str, int, Any]] = [
    ("forged: signed by another key", 401, lambda r: r.fake.mint(key=r.fake.other_key())),
    ("unsigned (alg none)", 401, unsigned),
    ("expired an hour ago", 401, lambda r: r.fake.mint(expires_in=-3600)),
    ("wrong audience", 403, lambda r: r.fake.mint(audience="another-bot")),
    ("wrong issuer", 401, lambda r: r.fake.mint(issuer="https://sts.example.com/")),
    ("unknown key id", 401, lambda r: r.fake.mint(kid="rotated-away")),
    ("another service URL", 403, lambda r: r.fake.mint(service_url="https://evil.example/")),
    ("not a JWT", 401, lambda r: "not-a-token"),
]


@pytest.mark.parametrize(("what", "status", "token"), BAD_TOKENS, ids=[t[0] for t in BAD_TOKENS])
async def test_a_bad_token_is_refused_and_changes_nothing(
        sqlite_db: Database, fake_teams: FakeBotFramework, what: str, status: int,
        token: Any) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        activity = rig.driver.message(BOB, "activate prod-db-admin for 1h reason x")
        response = await rig.driver.post(activity, token(rig))
        assert response.status == status, (what, await response.text())
        await nothing_changed(rig)


async def test_no_authorization_header_is_401(sqlite_db: Database,
                                               fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        rig.driver.signed = False
        response = await rig.driver.post(rig.driver.installed(BOB))
        assert response.status == 401
        await nothing_changed(rig)


async def test_a_key_not_endorsed_for_teams_is_403(sqlite_db: Database,
                                                    fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        fake_teams.endorsements = ["webchat", "directline"]
        response = await rig.driver.post(rig.driver.installed(BOB))
        assert response.status == 403
        await nothing_changed(rig)


async def test_unreachable_signing_keys_are_401_with_a_logged_reason_never_500(
        sqlite_db: Database, fake_teams: FakeBotFramework,
        caplog: pytest.LogCaptureFixture) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        fake_teams.keys_reachable = False
        with caplog.at_level(logging.WARNING):
            response = await rig.driver.post(rig.driver.installed(BOB))
        assert response.status == 401
        assert "signing keys could not be fetched" in caplog.text
        await nothing_changed(rig)
        fake_teams.keys_reachable = True
        response = await rig.driver.post(rig.driver.installed(BOB))
        assert response.status == 201, "keys fetched again once reachable"


async def test_a_tenant_not_configured_is_403(sqlite_db: Database,
                                               fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY,
                       env={"MICROSOFT_APP_TENANT_ID": "0000-other-tenant, 1111-another"}) as rig:
        response = await rig.driver.post(rig.driver.message(BOB, "roles"))
        assert response.status == 403
        await nothing_changed(rig)
        async with sqlite_db.read() as session:
            refused = list((await session.execute(select(AuditEventRow).where(
                AuditEventRow.action == "inbound.refused"))).scalars())
        assert [r.detail["reason"] for r in refused] == ["other_workspace_refused"]


async def test_several_tenants_may_be_served(sqlite_db: Database,
                                             fake_teams: FakeBotFramework) -> None:
    tenants = "0000-other-tenant, " + fake_teams.env()["MICROSOFT_APP_TENANT_ID"].upper()
    async with running(sqlite_db, fake_teams, POLICY,
                       env={"MICROSOFT_APP_TENANT_ID": tenants}) as rig:
        response = await rig.driver.post(rig.driver.installed(BOB))
        assert response.status == 201


async def test_an_invoke_with_a_bad_token_approves_nothing(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        await rig.introduce(BOB, ALICE)
        await rig.say(BOB, "activate prod-db-admin for 1h reason restore backup")
        (request,) = await rig.requests()
        card_id, _ = rig.latest_card(ALICE)
        invoke = rig.driver.invoke(ALICE, "pimApprove", {"id": request.id}, card_id)
        response = await rig.driver.post(invoke, fake_teams.mint(audience="another-bot"))
        assert response.status == 403
        await rig.settle()
        assert [r.state for r in await rig.requests()] == ["pending_approval"]
        assert rig.provider.calls == []


async def test_dev_mode_accepts_unauthenticated_requests_with_a_loud_warning(
        sqlite_db: Database, fake_teams: FakeBotFramework,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        async with running(sqlite_db, fake_teams, POLICY, auth=False) as rig:
            assert "NOT authenticated" in caplog.text
            told = await rig.say(BOB, "roles")
            assert any("prod-db-admin" in t for t in told)
            assert all(c.authorization == "" for c in fake_teams.calls), "no token without an id"


@pytest.mark.parametrize(("env", "says"), [
    ({}, "MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD are empty"),
    ({"MICROSOFT_APP_ID": APP_ID}, "MICROSOFT_APP_PASSWORD is empty"),
    ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "x"},
     "MICROSOFT_APP_TENANT_ID is empty"),
    ({"PIMBOT_TEAMS_DEV_MODE": "yes"}, "PIMBOT_TEAMS_DEV_MODE=1"),
])
def test_without_credentials_teams_stays_off_and_says_why(env: dict[str, str],
                                                          says: str) -> None:
    with pytest.raises(PimError) as raised:
        TeamsSettings.from_env(env)
    assert says in str(raised.value)


async def test_what_is_not_an_activity_is_refused_before_anything(
        sqlite_db: Database, fake_teams: FakeBotFramework) -> None:
    async with running(sqlite_db, fake_teams, POLICY) as rig:
        client = rig.driver.client
        response = await client.post("/api/messages", data="hello",
                                     headers={"Content-Type": "text/plain"})
        assert response.status == 415
        for body in ("{not json", '{"text": "no type"}', '{"type": "message", "entities": 5}'):
            response = await client.post("/api/messages", data=body,
                                         headers={"Content-Type": "application/json"})
            # Authentication is on: with no activity there is nothing a token could be
            # checked against, so this is refused as unauthenticated (401), not as a 400.
            assert response.status == 401, body
        await nothing_changed(rig)
