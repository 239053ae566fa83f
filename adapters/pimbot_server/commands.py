"""What each ``pimbot`` sub-command does, given parsed arguments and settings."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy.engine import make_url

from pimbot.ports import SystemClock
from pimbot.secretbox import generate_key
from pimbot.store.database import Database
from pimbot_server.settings import Settings
from pimbot_server.storage import open_database, secret_box

log = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


class CommandFailed(Exception):
    """A sub-command could not do its job; the message is printed as one line."""


def keygen() -> int:
    print(generate_key())
    return 0


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    key = args.command
    for attribute in ("db_command", "policy_command", "audit_command", "mfa_command", "platform"):
        if hasattr(args, attribute):
            key = f"{args.command} {getattr(args, attribute)}"
    return await COMMANDS[key](args, settings)


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.policy import PolicyError
    from pimbot.providers import ProviderConfigError
    from pimbot_server.app import serve
    from pimbot_server.mounting import AdapterUnavailable

    try:
        return await serve(settings)
    except PolicyError as exc:
        raise CommandFailed(f"the policy file has problems:\n{exc}") from None
    except (ProviderConfigError, AdapterUnavailable) as exc:
        raise CommandFailed(str(exc)) from None


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:

    db = await open_database(settings)
    await db.dispose()
    print(f"database is at the latest schema: {shown_url(settings.database_url)}")
    return 0


async def policy_validate(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.policy import PolicyError, load_policy, resolve_policy_path
    from pimbot.providers import provider_config_errors

    path = resolve_policy_path(args.file or settings.policy_file, Path.cwd())
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    problems = provider_config_errors(policy.providers, settings.env)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"policy OK: {len(policy.roles)} roles, {len(policy.assignments)} assignments")
    return 0


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

    path = resolve_policy_path(args.file or settings.policy_file, Path.cwd())
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    db = await open_database(settings)
    try:
        if apply:
            changes = await apply_policy(db, policy, SystemClock())
            await end_stranded(Context(db=db, clock=SystemClock(), policy=policy, providers={}))
            await _ask_running_bots_to_reconcile(db)
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
    return 0


async def _ask_running_bots_to_reconcile(db: Database) -> None:
    """Running pimbots read assignments from the database; a reconcile job makes them act on
    the change now (grant new active assignments, end removed ones) rather than at restart."""
    from pimbot.scheduling.queue import enqueue
    from pimbot.workflow.notices.outbox import JobKind

    async with db.transaction() as session:
        await enqueue(session, JobKind.RECONCILE.value, {}, SystemClock().now())


async def audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.store.audit_log import verify_chain

    anchor = None
    if args.anchor:
        seq, _, digest = args.anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            print("--anchor must be SEQ:HASH as printed by an earlier verify", file=sys.stderr)
            return 2
        anchor = (int(seq), digest.lower())
    db = await open_database(settings)
    try:
        report = await verify_chain(db, anchor)
    finally:
        await db.dispose()
    if report.ok:
        print(f"audit log intact: {report.checked} events; head {report.head_seq}:"
              f"{report.head_hash}")
        print("(keep the head outside the database; `pimbot audit verify --anchor "
              "SEQ:HASH` later also detects removal of the newest events)")
        return 0
    print(f"audit log broken at event {report.first_bad_seq}: {report.problem}", file=sys.stderr)
    return 1


async def audit_export(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.domain.times import resolve_when
    from pimbot.store.audit_log import export_events

    since = resolve_when(args.since, SystemClock().now()) if args.since else None
    fmt: Literal["jsonl", "csv"] = "csv" if args.format == "csv" else "jsonl"
    db = await open_database(settings)
    try:
        with _output(args.output) as out:
            count = await export_events(db, fmt, out, since)
    finally:
        await db.dispose()
    print(f"exported {count} events", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None or path == "-":
        yield sys.stdout
        return
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        yield handle


async def mfa_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot.secretbox import SecretBox, SecretKeyError, key_file_path, load_key, rotate_key

    text = sys.stdin.readline() if args.new_key == "-" else args.new_key
    if args.new_key != "-":
        print("note: a key given on the command line shows in `ps` and shell history; "
              "prefer `--new-key -` and pipe it in", file=sys.stderr)
    try:
        new = SecretBox(load_key(text))
    except SecretKeyError:
        raise CommandFailed(
            "--new-key is not 32 random bytes in URL-safe base64 (try: pimbot keygen)"
        ) from None
    db = await open_database(settings)
    try:
        count = await rotate_key(db, secret_box(settings, db), new)
    finally:
        await db.dispose()
    print(f"re-encrypted {count} TOTP secret(s) under the new key")
    if settings.secret_key is None and db.sqlite_path is not None:
        key_file = key_file_path(db.sqlite_path.resolve())
        key_file.write_text(text.strip() + "\n", encoding="ascii")
        print(f"the development key file {key_file} now holds the new key")
    else:
        print("now set PIMBOT_SECRET_KEY to the new key everywhere pimbot runs, and restart")
    return 0


async def manifest(args: argparse.Namespace, settings: Settings) -> int:
    if args.platform == "slack":
        render = _adapter_function("pimbot_slack.manifest", "render_manifest", "slack")
        socket_mode = args.socket_mode or bool(settings.env.get("SLACK_APP_TOKEN"))
        print(render(args.url, socket_mode=socket_mode))
        return 0
    app_id = args.app_id or settings.env.get("MICROSOFT_APP_ID", "")
    if not app_id:
        raise CommandFailed("the Teams manifest needs an app id: --app-id or MICROSOFT_APP_ID")
    if getattr(args, "out", None):
        build = _adapter_function("pimbot_teams.manifest", "build_package", "teams")
        print(f"Teams app package written to {build(app_id, Path(args.out))}")
        return 0
    render = _adapter_function("pimbot_teams.manifest", "render_manifest", "teams")
    print(render(app_id), end="")
    return 0


def _adapter_function(module_name: str, name: str, platform: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        module = None
    function = getattr(module, name, None)
    if function is None:
        raise CommandFailed(f"the {platform} adapter in this build has no manifest ({module_name})")
    render: Callable[..., Any] = function
    return render


async def bench(args: argparse.Namespace, settings: Settings) -> int:
    from pimbot_server.bench import run_benchmarks

    return await run_benchmarks(args)


COMMANDS: dict[str, Command] = {
    "run": run,
    "db upgrade": db_upgrade,
    "policy validate": policy_validate,
    "policy plan": policy_plan,
    "policy apply": policy_apply,
    "audit verify": audit_verify,
    "audit export": audit_export,
    "mfa rotate-key": mfa_rotate_key,
    "manifest slack": manifest,
    "manifest teams": manifest,
    "bench": bench,
}
