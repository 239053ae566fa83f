"""Who sent this activity: the Bot Connector's JWT on every ``POST /api/messages``.

The rules are those of "Authentication with the Bot Connector API" (see
../shared/fixtures/NOTES.md): a ``Bearer`` token, RS256, signed by a key published in the
JWKS the OpenID metadata names, that key endorsed for the activity's ``channelId``, ``iss``
the Bot Connector's, ``aud`` pimbot's app id, within ``nbf``/``exp`` (5 minutes of skew), and
its ``serviceurl`` claim equal to the activity's ``serviceUrl`` (so nobody can make pimbot
send replies, and its token, somewhere else).

Why not botframework-connector's ``JwtTokenValidation``: it fetches the metadata with
blocking ``requests`` calls without a timeout inside the event loop (stalling every turn while
Microsoft's endpoint is slow, and dead-locking against an in-process test server), and an
unreachable endpoint surfaces as a 500. Here the keys are fetched with aiohttp, with a
timeout, cached, and every failure is an ``AuthError`` that the route answers 401 or 403:
a request that cannot be checked is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256",)
CLOCK_SKEW_S = 300
KEYS_MAX_AGE_S = 24 * 3600.0
UNKNOWN_KID_REFRESH_S = 300.0  # an unknown key id refreshes the keys at most this often
FETCH_TIMEOUT_S = 10.0


class AuthError(Exception):
    """The request is refused: ``status`` 401 (no valid token) or 403 (a token, not for us)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    key: Any  # an RSA public key object
    endorsements: tuple[str, ...]


@dataclass
class _Keys:
    by_kid: dict[str, SigningKey] = field(default_factory=dict)
    fetched_at: float = float("-inf")


class OpenIdKeys:
    """The Bot Connector's signing keys, from its OpenID metadata's ``jwks_uri``, cached."""

    def __init__(self, metadata_url: str, session: aiohttp.ClientSession) -> None:
        self.metadata_url = metadata_url
        self._session = session
        self._keys = _Keys()
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> SigningKey:
        """The key ``kid``; keys older than a day, or missing ``kid``, are fetched again (a
        failed fetch keeps the keys already known, and with none known refuses: 401)."""
        now = time.monotonic()
        if now - self._keys.fetched_at > KEYS_MAX_AGE_S:
            await self._refresh(now)
        found = self._keys.by_kid.get(kid)
        if found is None and now - self._keys.fetched_at > UNKNOWN_KID_REFRESH_S:
            await self._refresh(now)
            found = self._keys.by_kid.get(kid)
        if found is None:
            if not self._keys.by_kid:
                raise AuthError(401, "the Bot Framework signing keys could not be fetched")
            raise AuthError(401, "the token's signing key is not among the published keys")
        return found

    async def _refresh(self, now: float) -> None:
        async with self._lock:
            if self._keys.fetched_at >= now:  # another request refreshed meanwhile
                return
            try:
                metadata = await self._get_json(self.metadata_url)
                jwks = await self._get_json(str(metadata["jwks_uri"]))
                keys = {str(k["kid"]): _signing_key(k) for k in jwks["keys"] if "kid" in k}
            except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:
                log.warning("Bot Framework signing keys could not be fetched (%s from %s)",
                            type(exc).__name__, self.metadata_url)
                return
            self._keys = _Keys(keys, time.monotonic())

    async def _get_json(self, url: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with self._session.get(url, timeout=timeout) as response:
            response.raise_for_status()
            return json.loads(await response.text())


def _signing_key(jwk: dict[str, Any]) -> SigningKey:
    key = RSAAlgorithm.from_jwk(json.dumps(jwk))
    return SigningKey(key, tuple(str(e) for e in jwk.get("endorsements") or ()))


@dataclass(frozen=True)
class Claims:
    """A checked token's claims (``anonymous`` in dev mode without credentials)."""

    values: dict[str, Any]
    anonymous: bool = False


@dataclass(frozen=True)
class CheckedToken:
    """A token whose signature and claims are good, not yet matched to an activity."""

    claims: Claims
    signing: SigningKey | None  # None in dev mode


class BotFrameworkAuth:
    """Checks one request's ``Authorization`` header against the activity it carries."""

    def __init__(self, app_id: str, issuer: str, keys: OpenIdKeys | None) -> None:
        self.app_id = app_id
        self.issuer = issuer
        self.keys = keys

    async def check(self, header: str, channel_id: str, service_url: str) -> Claims:
        """Both halves at once: the token (``token``), then the activity (``admits``)."""
        checked = await self.token(header)
        self.admits(checked, channel_id, service_url)
        return checked.claims

    async def token(self, header: str) -> CheckedToken:
        """The header's token checked on its own (signature, issuer, audience, lifetime), so
        that a request nobody sent can be refused before its body is read. The scheme is
        case-insensitive (RFC 7235: ``bearer`` is ``Bearer``)."""
        if not self.app_id or self.keys is None:
            return CheckedToken(Claims({}, anonymous=True), None)  # dev mode: warned at start
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "no Bearer token in the Authorization header")
        token = token.strip()
        try:
            header_fields = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(401, "the token is not a JWT") from None
        if header_fields.get("alg") not in ALGORITHMS:
            raise AuthError(401, "the token is not signed with RS256")
        signing = await self.keys.key(str(header_fields.get("kid", "")))
        return CheckedToken(Claims(self._decode(token, signing)), signing)

    def admits(self, checked: CheckedToken, channel_id: str, service_url: str) -> None:
        """The token is good for this activity: its key endorsed for the activity's channel,
        its ``serviceurl`` the activity's (else AuthError 403)."""
        signing = checked.signing
        if checked.claims.anonymous or signing is None:
            return
        if signing.endorsements and channel_id not in signing.endorsements:
            raise AuthError(403, f"the signing key is not endorsed for channel {channel_id!r}")
        if str(checked.claims.values.get("serviceurl", "")) != service_url:
            raise AuthError(403, "the token's serviceurl does not match the activity's")

    def _decode(self, token: str, signing: SigningKey) -> dict[str, Any]:
        try:
            decoded: dict[str, Any] = jwt.decode(
                token, signing.key, algorithms=list(ALGORITHMS), audience=self.app_id,
                issuer=self.issuer, leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidAudienceError:
            raise AuthError(403, "the token is for another app id") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, "the token was not issued by the Bot Connector") from None
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError(401, "the token is not valid yet") from None
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"the token is invalid ({type(exc).__name__})") from None
        return decoded
