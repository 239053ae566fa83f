"""Hints that name a request carry a real one: a grammar mistake in ``approve``, ``deny`` or
``cancel`` is answered with the example line of that command, whose sample id (``7kq2xm4p``)
means nothing to the person. It becomes the id of the person's own request where one fits
(the oldest waiting for their decision, for approve and deny; their own request not started
yet, for cancel), else the placeholder ``<request id>`` (``<review item id>`` for ``review
keep`` and ``review remove``), which says what goes there. An id
the person typed after the verb (``cancel 7kq2xm4p now``) is kept: the mistake was elsewhere."""

from __future__ import annotations

from pimbot.commands.catalog import SAMPLE_REQUEST_ID
from pimbot.commands.scanner import GrammarError
from pimbot.commands.values import check_request_id
from pimbot.domain.errors import PimError
from pimbot.domain.states import RequestState
from pimbot.workflow.actor import Actor
from pimbot.workflow.context import Context
from pimbot.workflow.records import open_requests
from pimbot.workflow.usecases.queries import oldest_waiting_id

PLACEHOLDER = "<request id>"
ITEM_PLACEHOLDER = "<review item id>"  # review keep|remove take a review item's id
CANCELLABLE = frozenset({RequestState.PENDING_APPROVAL, RequestState.APPROVED})


async def with_real_request_id(ctx: Context, actor: Actor, error: PimError,
                               typed: str = "") -> PimError:
    """``error`` with its hint's sample request id replaced (see the module's docstring);
    ``typed`` is the person's text."""
    if not error.hint or SAMPLE_REQUEST_ID not in error.hint:
        return error
    verb = error.hint.split(" ", 1)[0]
    if verb == "review":  # review keep|remove ITEM: an item id, after two words
        verb = " ".join(error.hint.split(" ", 2)[:2])
    request_id = _typed_id(typed, verb)
    if request_id is None and verb in {"approve", "deny"}:
        request_id = await oldest_waiting_id(ctx, actor)
    elif request_id is None and verb == "cancel":
        async with ctx.db.read() as session:
            own = await open_requests(session, email=actor.email, states=CANCELLABLE)
        request_id = own[0].id if own else None
    placeholder = ITEM_PLACEHOLDER if verb.startswith("review") else PLACEHOLDER
    hint = error.hint.replace(SAMPLE_REQUEST_ID, request_id or placeholder)
    return PimError(error.code, error.message, hint, audit=error.audit)


def _typed_id(typed: str, verb: str) -> str | None:
    """The request id the person typed right after ``verb`` (one word, or two: ``review
    keep``), if the word there is one."""
    words, size = typed.split(), len(verb.split())
    if words and words[0].lower() in {"pim", "/pim"}:
        words = words[1:]
    if len(words) <= size or " ".join(words[:size]).lower() != verb:
        return None
    try:
        return check_request_id(words[size])
    except GrammarError:
        return None
