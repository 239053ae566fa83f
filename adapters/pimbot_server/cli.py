"""The ``pimbot`` command: argparse sub-commands, exit codes 0 (done), 1 (failed), 2 (usage:
an argument missing or malformed, from argparse or a command's ``UsageError``), 141 (its
standard output closed under it: ``pipes``).

Heavy modules are imported by the sub-command that needs them, so ``pimbot keygen`` and
``--help`` stay instant: this module imports no SQLAlchemy, aiohttp, Alembic or adapter (the
sub-commands are in ``commands``, imported once the arguments parse). Messages for people go
to stderr as one line; logs go to stderr too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pimbot.domain.errors import PimError
from pimbot_server import logs
from pimbot_server.errors import CommandFailed, UsageError
from pimbot_server.pipes import EXIT_PIPE, silence_stdout
from pimbot_server.settings import (
    Settings,
    SettingsError,
    current_env,
    load_env_file,
    withdraw_from_environment,
)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pimbot",
        description="Privileged Identity Management in Slack, Microsoft Teams and the console.",
        epilog="Configuration comes from the environment (a .env file is honoured); see README.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("run", help="run the bot (console, Slack, Teams, or a worker replica)")
    _db_parser(sub)
    _policy_parser(sub)
    _audit_parser(sub)
    providers = sub.add_parser("providers", help="the providers of the policy file")
    providers_sub = providers.add_subparsers(dest="providers_command", metavar="ACTION",
                                             required=True)
    check = providers_sub.add_parser(
        "check", help="test each provider's credentials and permissions, granting nothing")
    check.add_argument("file", nargs="?", metavar="FILE", help="default: PIMBOT_POLICY")
    sub.add_parser("keygen", help="print a new PIMBOT_SECRET_KEY (or PIMBOT_AUDIT_KEY)")
    mfa = sub.add_parser("mfa", help="MFA administration").add_subparsers(
        dest="mfa_command", metavar="ACTION", required=True
    )
    rotate = mfa.add_parser("rotate-key", help="re-encrypt every TOTP secret under a new key")
    rotate.add_argument("--new-key", required=True, metavar="KEY",
                        help="new key; '-' reads it from stdin (preferred: keeps it out of ps)")
    review = sub.add_parser("review", help="access reviews").add_subparsers(
        dest="review_command", metavar="ACTION", required=True
    )
    export = review.add_parser("export", help="every item, decision, reviewer, reason, time")
    export.add_argument("id", metavar="ID", help="the review's id (shown when it started)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="csv")
    export.add_argument("--output", metavar="FILE", help="default: standard output")
    _manifest_parser(sub)
    bench = sub.add_parser("bench", help="run the benchmarks under bench/ (docs/PERFORMANCE.md)")
    bench.add_argument("names", nargs="*", metavar="NAME",
                       help="run only these benchmarks (a name, or part of one); default: all")
    bench.add_argument("--only", metavar="NAME", help="same as one NAME (kept for scripts)")
    bench.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    bench.add_argument("--json", action="store_true", help="print the reports as JSON")
    bench.add_argument("--out", metavar="FILE", default="bench-results.json",
                       help="write the reports and the machine as JSON here "
                            "(default: bench-results.json; '-' writes none)")
    return parser


def _db_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", metavar="ACTION", required=True
    )
    db.add_parser("upgrade", help="migrate PIMBOT_DATABASE_URL to the latest schema")
    backup = db.add_parser(
        "backup", help="copy a live SQLite database to FILE (PostgreSQL: prints pg_dump usage)")
    backup.add_argument("file", metavar="FILE", nargs="?", help="where the copy goes (new file)")


def _policy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="check and apply the policy file").add_subparsers(
        dest="policy_command", metavar="ACTION", required=True
    )
    for name, text in (
        ("validate", "check the policy file and print every error with its YAML path"),
        ("plan", "show what applying the policy file would change"),
        ("apply", "apply the policy file to the database"),
    ):
        action = policy.add_parser(name, help=text)
        action.add_argument("file", nargs="?", metavar="FILE", help="default: PIMBOT_POLICY")


def _audit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="audit_command", metavar="ACTION", required=True
    )
    verify = audit.add_parser(
        "verify", help="check the keyed chain and the checkpoints; name the first bad event")
    verify.add_argument("--anchor", metavar="SEQ:HASH",
                        help="a head printed by an earlier verify, kept outside the database")
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", metavar="FILE|URL",
                        help="read checkpoints from here (default: PIMBOT_AUDIT_CHECKPOINT)")
    source.add_argument("--no-checkpoint", action="store_true",
                        help="check the chain only (removal of the newest events won't show)")
    rotate = audit.add_parser("rotate-key", help="MAC new audit events under a new key")
    rotate.add_argument("--new-key", required=True, metavar="KEY",
                        help="new key; '-' reads it from stdin (preferred: keeps it out of ps)")
    purge = audit.add_parser(
        "purge", help="delete events older than PIMBOT_AUDIT_RETENTION (the rest stays "
                      "verifiable); `pimbot run` does it every six hours")
    purge.add_argument("--before", metavar="WHEN", help="purge events before this instead")
    export = audit.add_parser("export", help="write the audit log as JSON lines or CSV")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", metavar="WHEN", help="e.g. 2026-11-01, 'yesterday 09:00'")
    export.add_argument("--output", metavar="FILE", help="default: standard output")


def _manifest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    manifest = sub.add_parser("manifest", help="print a Slack or Teams app manifest")
    platforms = manifest.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    slack = platforms.add_parser("slack", help="the Slack app manifest (YAML)")
    slack.add_argument(
        "--url", help="public base URL, e.g. https://pim.example.com (not for --socket-mode)"
    )
    slack.add_argument(
        "--socket-mode",
        action="store_true",
        help="default: on if SLACK_APP_TOKEN is set",
    )
    teams = platforms.add_parser("teams", help="the Teams app manifest (JSON)")
    teams.add_argument("--app-id", help="default: MICROSOFT_APP_ID")
    teams.add_argument("--out", metavar="FILE.zip",
                       help="write the app package (manifest and icons) to upload to Teams")


def configure_logging(args: argparse.Namespace, settings: Settings | None) -> None:
    """Logs go to stderr: WARNING for the console alone (stdout is the chat), else INFO."""
    if args.verbose:
        level = logging.DEBUG
    elif args.command == "run" and settings is not None and not settings.needs_http:
        level = logging.WARNING
    else:
        level = logging.INFO
    logs.configure(level, settings.log_format if settings is not None else "text")
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _main(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is caught below
    except BrokenPipeError:  # `pimbot audit export | head`: end quietly, as Unix tools do
        silence_stdout()
        return EXIT_PIPE
    return code


def _main(args: argparse.Namespace) -> int:
    import asyncio

    if args.command == "keygen":
        from pimbot_server import commands

        return commands.keygen()
    load_env_file()
    try:
        settings = Settings.from_env(current_env())
    except SettingsError as exc:
        print(f"pimbot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    withdraw_from_environment()  # read once, into settings (bolt reads no second copy)
    configure_logging(args, settings)
    try:
        return asyncio.run(_dispatch(args, settings))
    except UsageError as exc:
        print(f"pimbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SettingsError, PimError, CommandFailed) as exc:
        print(f"pimbot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:
        raise
    except Exception as exc:
        if not isinstance(exc, OSError) and not _from_the_database(exc):
            raise
        log.debug("command failed", exc_info=True)
        print(f"pimbot: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """``pimbot run`` serving HTTP binds its port before importing SQLAlchemy, the policy
    or the core (``launch``); every other command imports ``commands`` first."""
    if args.command == "run" and settings.needs_http:
        from pimbot_server.launch import run_listening_first

        return await run_listening_first(settings)
    from pimbot_server import commands

    return await commands.dispatch(args, settings)


def _from_the_database(exc: Exception) -> bool:
    """An SQLAlchemy error (looked up, not imported: a failed command may not have needed it)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _one_line(exc: BaseException) -> str:
    """A database or network failure in one line (the driver's own error, not SQL)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else 'failed'}"


if __name__ == "__main__":
    sys.exit(main())
