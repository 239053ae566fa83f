"""The command provider: runs a configured argv per action, never through a shell.

The child gets a small environment: ``PATH``, ``HOME``, locale and ``TZ`` plus the variables
named in ``pass_env`` (captured when the provider is built), and the ``PIMBOT_*`` variables
below. pimbot's own secrets (chat tokens, the secret key) are therefore never handed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from enum import StrEnum

from pimbot.ports import GrantTarget
from pimbot.providers.errors import ProviderError
from pimbot.providers.wire import compact_json, iso_utc

log = logging.getLogger(__name__)

BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
NOT_ACTIVE_EXIT = 1
_REF_LIMIT = 1000


class CommandAction(StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"
    CHECK = "check"


def child_env(env: Mapping[str, str], pass_env: tuple[str, ...]) -> dict[str, str]:
    """The part of pimbot's environment a command may see."""
    return {key: env[key] for key in (*BASE_ENV, *pass_env) if key in env}


class CommandProvider:
    """``grant`` / ``revoke``: exit 0 is success. ``check``: exit 0 active, exit 1 not active.

    The child sees ``PIMBOT_ACTION``, ``PIMBOT_USER``, ``PIMBOT_ROLE``, ``PIMBOT_ACTIVATION_ID``,
    ``PIMBOT_STARTS_AT``, ``PIMBOT_EXPIRES_AT`` (ISO 8601 UTC, empty when open-ended),
    ``PIMBOT_GRANT`` (the role's grant parameters as JSON) and, on revoke, ``PIMBOT_REF`` (what
    the grant printed on standard output, if anything).
    """

    def __init__(
        self,
        name: str,
        commands: Mapping[CommandAction, tuple[str, ...]],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self._commands = dict(commands)
        self._env = dict(env or {})
        self._timeout = timeout

    async def grant(self, target: GrantTarget) -> str | None:
        code, out = await self._run(CommandAction.GRANT, target, None)
        self._require_success(CommandAction.GRANT, code, out)
        ref = out[0].strip()[:_REF_LIMIT]
        return ref or None

    async def revoke(self, target: GrantTarget, ref: str | None) -> None:
        code, out = await self._run(CommandAction.REVOKE, target, ref)
        self._require_success(CommandAction.REVOKE, code, out)

    async def check(self, target: GrantTarget) -> bool:
        code, out = await self._run(CommandAction.CHECK, target, None)
        if code == NOT_ACTIVE_EXIT:
            return False
        self._require_success(CommandAction.CHECK, code, out)
        return True

    async def close(self) -> None:
        return None

    def environment(
        self, action: CommandAction, target: GrantTarget, ref: str | None
    ) -> dict[str, str]:
        env = dict(self._env)
        env.update(
            PIMBOT_ACTION=str(action),
            PIMBOT_USER=target.email,
            PIMBOT_ROLE=target.role,
            PIMBOT_ACTIVATION_ID=target.activation_id,
            PIMBOT_STARTS_AT=iso_utc(target.starts_at) if target.starts_at else "",
            PIMBOT_EXPIRES_AT=iso_utc(target.expires_at) if target.expires_at else "",
            PIMBOT_GRANT=compact_json(target.grant),
        )
        if ref:
            env["PIMBOT_REF"] = ref
        return env

    def _require_success(self, action: CommandAction, code: int, out: tuple[str, str]) -> None:
        if code == 0:
            return
        lines = [line for line in out[1].splitlines() if line.strip()]
        tail = f": {lines[-1].strip()[:200]}" if lines else ""
        raise ProviderError(f"command {self.name}: {action} exited with {code}{tail}")

    async def _run(
        self, action: CommandAction, target: GrantTarget, ref: str | None
    ) -> tuple[int, tuple[str, str]]:
        argv = self._commands[action]
        where = f"command {self.name}: {action}"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=self.environment(action, target, ref),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, so a timeout kills it all
            )
        except OSError as exc:
            raise ProviderError(f"{where} could not start {argv[0]}: {exc.strerror}") from exc
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError as exc:
            await _kill(proc)
            raise ProviderError(f"{where} timed out after {self._timeout:g}s") from exc
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        code = proc.returncode if proc.returncode is not None else -1
        log.info("%s for %s (%s) exited with %s", where, target.email, target.role, code)
        return code, (stdout.decode(errors="replace"), stderr.decode(errors="replace"))


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
