"""``pimbot manifest slack | teams``: the app manifests, from arguments checked first.

Slack sends slash commands, clicks and events only to ``https://`` request URLs, so
``--url`` must be one (with a host; the request URL is it plus ``/slack/events``, and a URL
pasted with that path already is taken as its base). A wrong or missing argument is wrong
usage: exit 2, one line, with a ``try:``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pimbot.domain.errors import PimError
from pimbot_server.errors import CommandFailed, UsageError, cannot_write
from pimbot_server.settings import Settings

EVENTS_PATH = "/slack/events"
EXAMPLE_URL = "https://pim.example.com"


def manifest(args: argparse.Namespace, settings: Settings) -> int:
    if args.platform == "slack":
        return _slack(args, settings)
    return _teams(args, settings)


def _slack(args: argparse.Namespace, settings: Settings) -> int:
    render = _adapter_function("pimbot_slack.manifest", "render_manifest", "slack")
    socket_mode = args.socket_mode or bool(settings.env.get("SLACK_APP_TOKEN"))
    if socket_mode:
        print(render(None, socket_mode=True))
        return 0
    if not args.url:
        raise UsageError("a Slack app over HTTP needs its public URL (try: pimbot manifest "
                         f"slack --url {EXAMPLE_URL}, or --socket-mode when there is none)")
    print(render(public_base_url(args.url), socket_mode=False))
    return 0


def public_base_url(text: str) -> str:
    """``--url`` as the base of Slack's request URL; ``UsageError`` unless https with a host."""
    value = text.strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        host = None
    hint = f"try: pimbot manifest slack --url {EXAMPLE_URL}"
    if parts.scheme.lower() == "http" and host:
        raise UsageError(f"--url {value}: Slack sends requests only to https:// URLs "
                         f"(try: pimbot manifest slack --url https://{parts.netloc}"
                         f"{parts.path})")
    if parts.scheme.lower() != "https" or not host:
        raise UsageError(f"--url {value!r} is not an https:// URL with a host ({hint})")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"--url {value!r}: give the public base URL only, no user, query "
                         f"or fragment ({hint})")
    path = parts.path.rstrip("/").removesuffix(EVENTS_PATH)
    return f"https://{parts.netloc}{path}"


def _teams(args: argparse.Namespace, settings: Settings) -> int:
    app_id = args.app_id or settings.env.get("MICROSOFT_APP_ID", "")
    if not app_id:
        raise UsageError("the Teams manifest needs an app id (try: pimbot manifest teams "
                         "--app-id GUID, or set MICROSOFT_APP_ID)")
    try:
        if args.out:
            build = _adapter_function("pimbot_teams.manifest", "build_package", "teams")
            try:
                written = build(app_id, Path(args.out))
            except OSError as exc:
                raise cannot_write(args.out, exc) from None
            print(f"Teams app package written to {written}")
            return 0
        render = _adapter_function("pimbot_teams.manifest", "render_manifest", "teams")
        print(render(app_id), end="")
    except PimError as exc:  # the app id is not a GUID
        source = "--app-id" if args.app_id else "MICROSOFT_APP_ID"
        hint = f" (try: {exc.hint})" if exc.hint else ""
        raise UsageError(f"{source}: {exc.message}{hint}") from None
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
