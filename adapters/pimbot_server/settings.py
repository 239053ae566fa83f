"""Settings read from the environment: the only place pimbot looks at ``os.environ``.

``load_env_file`` honours a ``.env`` in the current directory without overriding what is
already set; ``Settings.from_env`` turns a mapping of variables into typed settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pimbot_server import database_urls
from pimbot_server.database_urls import DEFAULT_DATABASE_URL

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 3000
DEFAULT_AUDIT_RETENTION_DAYS = 400
MIN_AUDIT_RETENTION_DAYS = 30  # less is surely a mistake (an audit log kept for a week?)


class SettingsError(Exception):
    """A setting that cannot be used: one line, with a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (try: {self.hint})" if self.hint else self.message


class AdapterName(StrEnum):
    CONSOLE = "console"
    SLACK = "slack"
    TEAMS = "teams"
    NONE = "none"  # only the HTTP server and the scheduler (a worker replica)


LISTENING_ADAPTERS = frozenset({AdapterName.SLACK, AdapterName.TEAMS, AdapterName.NONE})


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    policy_file: str | None = None  # PIMBOT_POLICY as given; resolved by pimbot.policy
    secret_key: str | None = field(default=None, repr=False)
    audit_key: str | None = field(default=None, repr=False)  # else derived from secret_key
    audit_key_previous: tuple[str, ...] = field(default=(), repr=False)  # still trusted
    audit_checkpoint: str | None = None  # a file path or an https:// URL; None: the default
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    adapters: tuple[AdapterName, ...] = (AdapterName.CONSOLE,)
    metrics_token: str | None = field(default=None, repr=False)  # GET /metrics needs it
    log_format: str = "text"  # PIMBOT_LOG_FORMAT: text | json
    audit_retention_days: int | None = DEFAULT_AUDIT_RETENTION_DAYS  # None: keep for ever
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # for adapters' from_env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            database_url=_database_url(env.get("PIMBOT_DATABASE_URL", "")),
            policy_file=env.get("PIMBOT_POLICY", "").strip() or None,
            secret_key=env.get("PIMBOT_SECRET_KEY", "").strip() or None,
            audit_key=env.get("PIMBOT_AUDIT_KEY", "").strip() or None,
            audit_key_previous=tuple(
                env.get("PIMBOT_AUDIT_KEY_PREVIOUS", "").replace(",", " ").split()
            ),
            audit_checkpoint=checkpoint_destination(env.get("PIMBOT_AUDIT_CHECKPOINT", "")),
            host=env.get("PIMBOT_HOST", "").strip() or DEFAULT_HOST,
            port=_port(env.get("PIMBOT_PORT", "")),
            adapters=choose_adapters(env),
            metrics_token=env.get("PIMBOT_METRICS_TOKEN", "").strip() or None,
            log_format=_log_format(env.get("PIMBOT_LOG_FORMAT", "")),
            audit_retention_days=_retention(env.get("PIMBOT_AUDIT_RETENTION", "")),
            env=dict(env),
        )

    @property
    def needs_http(self) -> bool:
        """The HTTP server runs whenever Slack, Teams or ``none`` is among the adapters."""
        return any(name in LISTENING_ADAPTERS for name in self.adapters)

    @property
    def has_console(self) -> bool:
        return AdapterName.CONSOLE in self.adapters


def load_env_file(path: Path | None = None) -> None:
    """Load ``.env`` (default: in the current directory) without overriding set variables."""
    from dotenv import load_dotenv

    target = path if path is not None else Path.cwd() / ".env"
    if target.is_file():
        load_dotenv(target, override=False)


def current_env() -> dict[str, str]:
    return dict(os.environ)


# What slack_bolt reads from the process environment by itself when its own argument is
# empty (its token; its OAuth flow, which pimbot does not use). pimbot gives bolt everything
# as arguments (the one Web API client, which carries the bot token), so once the settings
# are read these leave the process environment: bolt then has one source of configuration,
# not a second token beside the client (which it warns of, "token will be unused").
BOLT_READS = ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def withdraw_from_environment(names: tuple[str, ...] = BOLT_READS) -> None:
    """Remove ``names`` from ``os.environ`` (after ``Settings.from_env`` has read them)."""
    for name in names:
        os.environ.pop(name, None)


def _database_url(raw: str) -> str:
    try:
        return database_urls.database_url(raw)
    except database_urls.DatabaseUrlError as exc:
        raise SettingsError(exc.message, exc.hint) from None


def _port(raw: str) -> int:
    text = raw.strip()
    if not text:
        return DEFAULT_PORT
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise SettingsError(f"PIMBOT_PORT={raw!r} is not a TCP port", "PIMBOT_PORT=3000")
    return int(text)


def _log_format(raw: str) -> str:
    text = raw.strip().lower() or "text"
    if text not in ("text", "json"):
        raise SettingsError(f"PIMBOT_LOG_FORMAT={raw!r} is neither text nor json",
                            "PIMBOT_LOG_FORMAT=json")
    return text


def _retention(raw: str) -> int | None:
    """``PIMBOT_AUDIT_RETENTION``: days (``400``, ``400d``), or ``forever`` / ``0``."""
    text = raw.strip().lower().removesuffix("d")
    if not text:
        return DEFAULT_AUDIT_RETENTION_DAYS
    if text in ("forever", "off", "0", "none"):
        return None
    if not text.isdigit() or int(text) < MIN_AUDIT_RETENTION_DAYS:
        raise SettingsError(
            f"PIMBOT_AUDIT_RETENTION={raw!r} is not a number of days (at least "
            f"{MIN_AUDIT_RETENTION_DAYS}) or 'forever'", "PIMBOT_AUDIT_RETENTION=400d")
    return int(text)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def checkpoint_destination(raw: str) -> str | None:
    """``PIMBOT_AUDIT_CHECKPOINT``: a file path, or an ``https://`` URL (``http://`` only to
    a loopback address, e.g. a local relay); empty means the default file."""
    text = raw.strip()
    if "://" not in text:
        return text or None
    parts = urlsplit(text)
    if parts.scheme == "https" and parts.hostname:
        return text
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return text
    raise SettingsError(
        "PIMBOT_AUDIT_CHECKPOINT must be a file path or an https:// URL "
        "(http:// only to 127.0.0.1)",
        "PIMBOT_AUDIT_CHECKPOINT=https://audit.example.com/pimbot/checkpoints",
    )


def choose_adapters(env: Mapping[str, str]) -> tuple[AdapterName, ...]:
    """PIMBOT_ADAPTERS if set, else the platforms whose credentials are present, else console."""
    forced = env.get("PIMBOT_ADAPTERS", "").strip()
    if forced:
        return _parse_adapters(forced)
    chosen: list[AdapterName] = []
    if env.get("SLACK_BOT_TOKEN") and (
        env.get("SLACK_SIGNING_SECRET") or env.get("SLACK_APP_TOKEN")
    ):
        chosen.append(AdapterName.SLACK)
    teams_credentials = env.get("MICROSOFT_APP_ID") and env.get("MICROSOFT_APP_PASSWORD")
    if teams_credentials or env.get("PIMBOT_TEAMS_DEV_MODE", "").strip() == "1":
        chosen.append(AdapterName.TEAMS)
    return tuple(chosen) or (AdapterName.CONSOLE,)


def teams_left_off(env: Mapping[str, str], adapters: tuple[AdapterName, ...]) -> str | None:
    """Why Teams does not run although some of its settings are present (None otherwise)."""
    if AdapterName.TEAMS in adapters:
        return None
    app_id, password = env.get("MICROSOFT_APP_ID", ""), env.get("MICROSOFT_APP_PASSWORD", "")
    dev_mode = env.get("PIMBOT_TEAMS_DEV_MODE", "").strip()
    if not (app_id or password or dev_mode):
        return None
    if env.get("PIMBOT_ADAPTERS", "").strip():
        return "Teams stays off: PIMBOT_ADAPTERS does not name it"
    if dev_mode and dev_mode != "1":
        return f"Teams stays off: PIMBOT_TEAMS_DEV_MODE={dev_mode!r} (only 1 turns dev mode on)"
    missing = "MICROSOFT_APP_PASSWORD" if app_id else "MICROSOFT_APP_ID"
    return (f"Teams stays off: {missing} is empty, and requests to /api/messages could not be "
            "authenticated without both (PIMBOT_TEAMS_DEV_MODE=1 is for local tests only)")


def _parse_adapters(text: str) -> tuple[AdapterName, ...]:
    names: list[AdapterName] = []
    for part in text.replace(" ", ",").split(","):
        word = part.strip().lower()
        if not word:
            continue
        try:
            name = AdapterName(word)
        except ValueError:
            known = ", ".join(a.value for a in AdapterName)
            raise SettingsError(
                f"PIMBOT_ADAPTERS names an unknown adapter '{word}' (known: {known})",
                "PIMBOT_ADAPTERS=slack,teams",
            ) from None
        if name not in names:
            names.append(name)
    if not names:
        raise SettingsError("PIMBOT_ADAPTERS is empty", "PIMBOT_ADAPTERS=console")
    if AdapterName.NONE in names and len(names) > 1:
        raise SettingsError(
            "PIMBOT_ADAPTERS=none cannot be combined with other adapters", "PIMBOT_ADAPTERS=none"
        )
    return tuple(names)
