"""A scratch pimbot database the size of a large organisation, filled in bulk.

``fill`` writes people's assignments, a history of requests (mostly ended, some active, some
waiting for approval, with votes), their grants, and an audit log whose events form a valid
chain: each is hashed with pimbot's own ``event_hash`` over the previous one's hash and MACed
under the database handle's audit key, so ``verify_chain`` passes on it afterwards. Rows go
in as multi-row INSERTs of ``CHUNK`` rows through SQLAlchemy Core (the types' own binding).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from pimbot.store.audit_crypto import GENESIS_HASH, event_hash
from pimbot.store.database import Database
from pimbot.store.tables import AssignmentRow, AuditEventRow, GrantRow, RequestRow, VoteRow

CHUNK = 5000
ROLES = 100
ROLES_PER_PERSON = 10
APPROVAL_EVERY = 4  # role-0, role-4, … need an approver
APPROVER_GROUPS = 10
APPROVERS_PER_GROUP = 5
ACTIONS = ("request.created", "request.approved", "grant.granted", "grant.revoked",
           "request.expired", "mfa.verified", "command.rejected", "assignment.added")


def person(i: int) -> str:
    return f"user{i}@example.com"


def approver(group: int, k: int) -> str:
    return f"approver{group}-{k}@example.com"


def policy_text() -> str:
    """Every role, the approver groups; the assignments are written straight to the store
    (as an admin's, ``source = admin``), not listed in the file."""
    lines = ["admins: [admin@example.com]", "auditors: [audit@example.com]", "groups:"]
    for g in range(APPROVER_GROUPS):
        members = ", ".join(approver(g, k) for k in range(APPROVERS_PER_GROUP))
        lines.append(f"  approvers-{g}: [{members}]")
    lines += ["providers:", "  demo: {type: noop}", "roles:"]
    for r in range(ROLES):
        lines += [f"  role-{r}:", f"    description: Role {r}", "    provider: demo",
                  "    max_duration: 8h"]
        if r % APPROVAL_EVERY == 0:
            lines.append(f"    approval: {{required: true, approvers: "
                         f"['group:approvers-{r // APPROVAL_EVERY % APPROVER_GROUPS}']}}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Sizes:
    assignments: int
    requests: int
    active: int
    pending: int
    events: int

    @property
    def people(self) -> int:
        return max(1, self.assignments // ROLES_PER_PERSON)


@dataclass
class Filled:
    probe: str  # a person with eligible roles, active grants and a pending request
    approver: str  # an approver of role-0 with requests waiting for them
    request_id: str  # a request id, for the primary-key baseline
    head_seq: int


async def _insert(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with db.transaction() as session:
            await session.execute(insert(table), rows[start:start + CHUNK])


def _roles_of(i: int) -> list[int]:
    return [(i * 7 + j * 13) % ROLES for j in range(ROLES_PER_PERSON)]


async def fill(db: Database, sizes: Sizes, now: datetime, seed: int = 14) -> Filled:
    rng = random.Random(seed)
    await _insert(db, AssignmentRow, [
        {"id": f"a{n:09d}", "email": person(n // ROLES_PER_PERSON),
         "role": f"role-{_roles_of(n // ROLES_PER_PERSON)[n % ROLES_PER_PERSON]}",
         "type": "eligible", "starts_at": None, "ends_at": None, "source": "admin",
         "created_by": "admin@example.com", "created_at": now - timedelta(days=300),
         "removed_at": None, "removed_by_review": None, "review_hold": False}
        for n in range(sizes.assignments)])
    requests, grants, votes = _requests(rng, sizes, now)
    await _insert(db, RequestRow, requests)
    await _insert(db, GrantRow, grants)
    await _insert(db, VoteRow, votes)
    head = await _audit(db, rng, sizes, now, [r["id"] for r in requests])
    return Filled(probe=person(0), approver=approver(0, 0), request_id=requests[-1]["id"],
                  head_seq=head)


def _request(n: int, email: str, role: int, state: str, at: datetime) -> dict[str, Any]:
    ended = state in ("expired", "deactivated")
    return {
        "id": f"r{n:09d}", "kind": "activation", "email": email, "role": f"role-{role}",
        "state": state, "version": 1, "duration_s": 3600, "reason": "bench", "ticket": "",
        "platform": "console", "min_approvals": 1 if role % APPROVAL_EVERY == 0 else 0,
        "parent_id": None, "assignment_id": None, "requested_at": at, "start_at": at,
        "approval_due_at": None, "decided_at": None if state == "pending_approval" else at,
        "decided_by": "", "decision_note": "",
        "granted_at": None if state == "pending_approval" else at,
        "expires_at": None if state == "pending_approval" else at + timedelta(hours=1),
        "ended_at": at + timedelta(hours=1) if ended else None,
        "revoked_at": at + timedelta(hours=1) if ended else None, "grant_id": None,
        "rule_note": "", "escalation": 0, "failure": "", "votes_count": 0,
    }


def _requests(rng: random.Random, sizes: Sizes, now: datetime
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """History (ended), then active ones (with their grants), then pending ones."""
    requests, grants, votes = [], [], []
    held: set[tuple[int, int]] = set()
    approval_roles = [r for r in range(ROLES) if r % APPROVAL_EVERY == 0]
    history = sizes.requests - sizes.active - sizes.pending
    for n in range(sizes.requests):
        i = rng.randrange(sizes.people) if n else 0
        if n < history:
            at = now - timedelta(days=rng.uniform(1, 400))
            requests.append(_request(n, person(i), rng.choice(_roles_of(i)), "expired", at))
        elif n < history + sizes.active:
            at = now - timedelta(minutes=rng.uniform(1, 50))
            i = i if n > history else 0
            role = rng.choice(_roles_of(i))
            if (i, role) in held:
                continue  # one live grant per person and role
            held.add((i, role))
            row = _request(n, person(i), role, "active", at)
            requests.append(row)
            grants.append(_grant(n, row, at))
        else:
            role = 0 if n % 10 == 0 else rng.choice(approval_roles)
            at = now - timedelta(minutes=rng.uniform(1, 600))
            requests.append(_request(n, person(i), role, "pending_approval", at))
            if n % 3 == 0:
                group = role // APPROVAL_EVERY % APPROVER_GROUPS
                votes.append({"request_id": f"r{n:09d}", "approver": approver(group, 1),
                              "decision": "approve", "comment": "", "at": at})
    return requests, grants, votes


def _grant(n: int, row: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"id": f"g{n:09d}", "email": row["email"], "role": row["role"], "provider": "demo",
            "params": {}, "activation_id": row["id"], "state": "granted", "ref": None,
            "starts_at": at, "expires_at": row["expires_at"], "created_at": at,
            "granted_at": at, "revoke_due_at": None, "revoked_at": None, "lease_token": None,
            "lease_until": None, "lease_owner": None, "failures": 0, "failure": "",
            "failure_alerted_at": None, "version": 1}


async def _audit(db: Database, rng: random.Random, sizes: Sizes, now: datetime,
                 request_ids: list[str]) -> int:
    """``sizes.events`` chained events over 400 days, oldest first; the head's seq."""
    key = db.audit_keyring.current
    start = now - timedelta(days=400)
    step = timedelta(days=400) / max(1, sizes.events)
    prev = GENESIS_HASH
    batch: list[dict[str, Any]] = []
    for seq in range(1, sizes.events + 1):
        i = rng.randrange(sizes.people)
        role = f"role-{rng.choice(_roles_of(i))}"
        action = ACTIONS[seq % len(ACTIONS)]
        subject = role if action == "assignment.added" else rng.choice(request_ids)
        detail = {"user": person(i), "role": role}
        at = (start + step * seq).astimezone(UTC)
        digest = event_hash(seq=seq, at=at, actor=person(i), action=action, subject=subject,
                            outcome="ok", detail=detail, prev_hash=prev)
        batch.append({"seq": seq, "at": at, "actor": person(i), "action": action,
                      "subject": subject, "outcome": "ok", "detail": detail, "prev_hash": prev,
                      "hash": digest, "key_id": key.key_id, "mac": key.event_mac(digest),
                      "once_key": None})
        prev = digest
        if len(batch) == CHUNK:
            await _insert(db, AuditEventRow, batch)
            batch = []
    await _insert(db, AuditEventRow, batch)
    return sizes.events
