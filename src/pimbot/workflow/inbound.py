"""Inbound requests at the edge, before they become turns: each is acted on once, and only
for people the deployment serves. Adapters ask; the core decides and audits.

- ``first_delivery``: a request whose platform-unique key was seen before (a replayed signed
  request, or the platform's own retry) is a replay: the adapter acks it and does nothing,
  unless it was never finished and its recorder is gone (or its claim is older than the
  lease): then the retry is acted on, once. ``finished`` records that a request's work is
  done.
- ``admit``: a caller who is not a member of the served workspace (another workspace, a
  person from another organisation, a guest unless the policy allows guests) is refused.

Both refusals are audited (never with the request's content); the answer is one line.
"""

from __future__ import annotations

import logging
from typing import Any

from pimbot.domain.admission import Caller, decide_admission
from pimbot.store.deliveries import DeliveryLedger, Take
from pimbot.store.tables import PlatformIdentityRow
from pimbot.ui.cards import Reply
from pimbot.workflow.audit import record, record_alone
from pimbot.workflow.context import Context

log = logging.getLogger(__name__)

REPLAYED = "inbound.replayed"
RESUMED = "inbound.resumed"  # a retry of a request its dead recorder never finished
REFUSED = "inbound.refused"


async def first_delivery(
    ctx: Context, ledger: DeliveryLedger, platform: str, key: str, kind: str,
    user_id: str = "", *, retryable: bool = True, **detail: Any,
) -> bool:
    """True when ``key`` is to be acted on now, on this replica: its first delivery, or a
    retry of one whose recorder died before finishing (``finished`` is to be called when the
    work is done, unless ``retryable`` is False: the platform never retries it, so it is
    recorded finished at once). A replay is audited, and so is a retry taken over."""
    async with ctx.db.transaction() as session:
        take = await ledger.take(session, platform, key, kind, ctx.clock.now(), ctx.owner,
                                 retryable=retryable)
        if take is Take.FIRST:
            return True
        identity = await session.get(PlatformIdentityRow, (platform, user_id))
        actor = identity.email if identity is not None else f"{platform}:{user_id or 'unknown'}"
        if take is Take.RESUMED:
            await record(ctx, session, actor, RESUMED, kind, outcome="resumed",
                         platform=platform, user_id=user_id, **detail)
        else:
            await record(ctx, session, actor, REPLAYED, kind, outcome="ignored",
                         platform=platform, user_id=user_id, **detail)
    if take is Take.RESUMED:
        log.warning("a retried request its first recorder never finished is acted on now",
                    extra={"platform": platform, "kind": kind})
        return True
    log.info("replayed request ignored", extra={"platform": platform, "kind": kind})
    return False


async def finished(ctx: Context, ledger: DeliveryLedger, platform: str, key: str) -> None:
    """The work of delivery ``key`` is done: a later retry of it is a replay. A failure to
    record it is logged, never raised (the work is done; at worst a retry after the lease
    is acted on again)."""
    try:
        await ledger.finish(platform, key, ctx.clock.now())
    except Exception as exc:
        log.warning("could not record a finished request", extra={
            "platform": platform, "error": type(exc).__name__})


async def admit(ctx: Context, caller: Caller, what: str) -> Reply | None:
    """None when the caller may go on; else the refusal (audited) to answer with."""
    decision = decide_admission(caller.standing, ctx.policy.chat_rules(caller.platform))
    if decision.allowed:
        return None
    await record_alone(ctx, caller.label, REFUSED, what, outcome="refused",
                       reason=str(decision.verdict), standing=str(caller.standing),
                       platform=caller.platform, user_id=caller.user_id, team=caller.team)
    log.info("request refused at the edge",
             extra={"platform": caller.platform, "verdict": str(decision.verdict)})
    return Reply(text=decision.message, ok=False)

