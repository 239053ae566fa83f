"""What each ``pimbot`` sub-command does, given parsed arguments and settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from pimbot.ports import SystemClock
from pimbot.secretbox import generate_key
from pimbot.store.database import Database
from pimbot_server.errors import CommandFailed, UsageError
from pimbot_server.policy_guard import no_roles_warning, refuse_blank, removals
from pimbot_server.settings import Settings
from pimbot_server.storage import open_database, secret_box

if TYPE_CHECKING:
    from pimbot_server.listener import Listener

log = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


def keygen() -> int:
    print(generate_key())
    return 0


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    key = args.command
    for attribute in ("db_command", "policy_command", "audit_command", "mfa_command",
                      "review_command", "providers_command", "platform"):
        if hasattr(args, attribute):
            key = f"{args.command} {getattr(args, attribute)}"
    return await COMMANDS[key](args, settings)


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """``pimbot run`` without a listener bound yet (the console; ``launch`` binds one first
    for Slack, Teams and ``none``)."""
    return await _serve(settings)


async def run_behind(listener: Listener, stopping: asyncio.Event, settings: Settings) -> int:
    """``pimbot run`` behind the listener ``pimbot_server.launch`` has bound."""
    return await _serve(settings, listener, stopping)


async def _serve(settings: Settings, listener: Listener | None = None,
                 stopping: asyncio.Event | None = None) -> int:
    from pimbot.policy import PolicyError
    from pimbot.providers import ProviderConfigError
    from pimbot_server.app import serve
    from pimbot_server.mounting import AdapterUnavailable

    try:
        return await serve(settings, listener, stopping)
    except PolicyError as exc:
        raise CommandFailed(f"the policy file has problems:\n{exc}") from None
    except (ProviderConfigError, AdapterUnavailable) as exc:
        raise CommandFailed(str(exc)) from None


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot_server.audit_commands import seal_upgrade

    db = await open_database(settings, keys=False)
    try:
        await seal_upgrade(db, settings)
    finally:
        await db.dispose()
    print(f"database is at the latest schema: {shown_url(settings.database_url)}")
    return 0


async def db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot_server.backup import backup

    return await backup(args.file, settings)


async def policy_validate(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.policy import PolicyError, load_policy, resolve_policy_path
    from pimbot.providers import provider_config_errors

    path = resolve_policy_path(args.file or settings.policy_file, Path.cwd())
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    refuse_blank(path, policy)
    problems = provider_config_errors(policy.providers, settings.env)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"policy OK: {len(policy.roles)} roles, {len(policy.assignments)} assignments")
    warning = no_roles_warning(path, policy)
    if warning:
        print(warning, file=sys.stderr)
    return 0


async def providers_check(args: argparse.Namespace, settings: Settings) -> int:
    """Sign in to every provider and read what it needs, granting nothing; 1 on a problem."""
    from pimbot.policy import PolicyError, load_policy, resolve_policy_path
    from pimbot.providers.checking import check_providers, format_reports

    path = resolve_policy_path(args.file or settings.policy_file, Path.cwd())
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    reports = await check_providers(policy, settings.env)
    print(format_reports(reports))
    return 0 if all(report.ok for report in reports) else 1


async def policy_plan(args: argparse.Namespace, settings: Settings) -> int:
    return await _plan_or_apply(args, settings, apply=False)


async def policy_apply(args: argparse.Namespace, settings: Settings) -> int:
    return await _plan_or_apply(args, settings, apply=True)


async def _plan_or_apply(args: argparse.Namespace, settings: Settings, *, apply: bool) -> int:
    from pimbot.policy import PolicyError, load_policy, resolve_policy_path
    from pimbot.policy.live_grants import ProviderStillInUse
    from pimbot.policy.plan import apply_policy, format_plan, plan_policy
    from pimbot.workflow.context import Context
    from pimbot.workflow.lifecycle.stranded import end_stranded
    from pimbot_server.audit_commands import checkpoint_after_change

    path = resolve_policy_path(args.file or settings.policy_file, Path.cwd())
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    refuse_blank(path, policy)
    db = await open_database(settings, keys=apply)
    try:
        if apply:
            async with db.startup_lock():
                changes = await apply_policy(db, policy, SystemClock())
            await end_stranded(Context(db=db, clock=SystemClock(), policy=policy, providers={}))
            await _ask_running_bots_to_reconcile(db)
            await checkpoint_after_change(db, settings)
        else:
            changes = await plan_policy(db, policy)
    except ProviderStillInUse as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    print(format_plan(changes))
    if apply:
        print(f"applied {len(changes)} change(s) from {path}")
    if not policy.roles and changes:
        did = "removed" if apply else "applying it would remove"
        print(f"warning: {path} defines no roles: {did} {removals(changes)}", file=sys.stderr)
    return 0


async def _ask_running_bots_to_reconcile(db: Database) -> None:
    """Running pimbots read assignments from the database; a reconcile job makes them act on
    the change now (grant new active assignments, end removed ones) rather than at restart."""
    from pimbot.scheduling.queue import enqueue
    from pimbot.workflow.notices.outbox import JobKind

    async with db.transaction() as session:
        await enqueue(session, JobKind.RECONCILE.value, {}, SystemClock().now())


async def review_export(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot_server.audit_commands import review_export as export

    return await export(args, settings)


async def mfa_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.secretbox import SecretBox, SecretKeyError, key_file_path, load_key, rotate_key
    from pimbot.store.audit_crypto import derive_audit_key
    from pimbot_server.audit_commands import hand_over, read_new_key
    from pimbot_server.checkpoints import checkpoint_store

    text = read_new_key(args.new_key)
    try:
        new_key = load_key(text)
    except SecretKeyError:
        raise UsageError(
            "--new-key is not 32 random bytes in URL-safe base64 (try: pimbot keygen)"
        ) from None
    db = await open_database(settings)
    try:
        count = await rotate_key(db, secret_box(settings, db), SecretBox(new_key))
        print(f"re-encrypted {count} TOTP secret(s) under the new key")
        if settings.secret_key is None and db.sqlite_path is not None:
            key_file = key_file_path(db.sqlite_path.resolve())
            key_file.write_text(text.strip() + "\n", encoding="ascii")
            print(f"the development key file {key_file} now holds the new key")
        else:
            print("now set PIMBOT_SECRET_KEY to the new key everywhere pimbot runs, and restart")
        if settings.audit_key is None:  # the audit key is derived from this one: hand over
            new_audit = derive_audit_key(new_key)
            await hand_over(db, checkpoint_store(settings, db), new_audit)
            print(f"the audit key derived from it changed too: events from now on are MACed "
                  f"under key {new_audit.key_id}")
    finally:
        await db.dispose()
    return 0


async def audit(args: argparse.Namespace, settings: Settings) -> int:
    """``audit verify | export | rotate-key`` (imported here: aiohttp is slow to import)."""
    from pimbot_server import audit_commands

    return await audit_commands.COMMANDS[args.audit_command](args, settings)


async def manifest(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot_server.manifests import manifest as write_manifest

    return write_manifest(args, settings)


async def bench(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot_server.bench import run_benchmarks

    return await run_benchmarks(args)


COMMANDS: dict[str, Command] = {
    "run": run,
    "db upgrade": db_upgrade,
    "policy validate": policy_validate,
    "policy plan": policy_plan,
    "policy apply": policy_apply,
    "providers check": providers_check,
    "db backup": db_backup,
    "audit verify": audit,
    "audit purge": audit,
    "audit export": audit,
    "audit rotate-key": audit,
    "review export": review_export,
    "mfa rotate-key": mfa_rotate_key,
    "manifest slack": manifest,
    "manifest teams": manifest,
    "bench": bench,
}
