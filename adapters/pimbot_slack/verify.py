"""Slack request signatures (v0 HMAC-SHA256 over ``v0:timestamp:body``).

Inbound requests are verified by slack-bolt's request verification (slack_sdk's
``SignatureVerifier``: constant-time compare, 300 s window); these helpers compute the same
signature for tests, the benchmark and anyone driving ``POST /slack/events`` by hand.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


def slack_signature(signing_secret: str, timestamp: str, body: bytes | str) -> str:
    """``v0=<hex>``: the value Slack puts in ``X-Slack-Signature``."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + timestamp.encode() + b":" + raw
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(
    signing_secret: str, body: bytes | str, timestamp: int, content_type: str
) -> dict[str, str]:
    """The headers Slack sends with a signed request body."""
    ts = str(timestamp)
    return {
        "Content-Type": content_type,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: slack_signature(signing_secret, ts, body),
    }
