"""Send one signed ``/pim`` slash command to a running pimbot, as Slack would.

    .venv/bin/python tools/slack_command.py roles
    .venv/bin/python tools/slack_command.py activate prod-db-admin for 1h reason restore
    .venv/bin/python tools/slack_command.py --url http://127.0.0.1:3000 --secret S "help"

The words after the options are the text after ``/pim``, quoted or not (``--`` before them
when one starts with ``-``).

The body has Slack's slash-command form fields; it is signed with ``SLACK_SIGNING_SECRET``
(or ``--secret``) the way Slack signs (``X-Slack-Signature``, v0 HMAC-SHA256), and posted to
``URL/slack/events``. Prints the HTTP status, the ``Retry-After`` header if any, and the
body. ``--bad-signature`` signs with another secret, to see the request refused (401).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from pimbot_slack.verify import signed_headers

FORM = "application/x-www-form-urlencoded"


RESPONSE_URL = "https://hooks.slack.com/commands/T0LOCAL001/1/local"


def body_of(text: str, user_id: str, team_id: str, response_url: str = RESPONSE_URL) -> str:
    trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
    return urlencode({
        "token": "unused", "team_id": team_id, "team_domain": "local",
        "channel_id": "D0LOCAL001", "channel_name": "directmessage", "user_id": user_id,
        "user_name": "local", "command": "/pim", "text": text, "api_app_id": "A0LOCAL001",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger,
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("text", nargs="+", metavar="WORD",
                        help="what follows /pim, e.g. roles, or activate prod-db for 1h ...")
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="pimbot's base URL")
    parser.add_argument("--secret", default=os.environ.get("SLACK_SIGNING_SECRET", ""),
                        help="the signing secret (default: SLACK_SIGNING_SECRET)")
    parser.add_argument("--user", default="U0LOCAL001", help="the Slack user id sending it")
    parser.add_argument("--team", default="T0LOCAL001", help="the Slack workspace id")
    parser.add_argument("--response-url", default=RESPONSE_URL,
                        help="where pimbot posts its answer (a local stand-in for Slack's)")
    parser.add_argument("--bad-signature", action="store_true",
                        help="sign with a wrong secret (pimbot answers 401)")
    args = parser.parse_args(argv)  # options before or after the words
    if not args.secret:
        parser.error("give --secret or set SLACK_SIGNING_SECRET")
    body = body_of(" ".join(args.text), args.user, args.team, args.response_url)
    secret = "not-" + args.secret if args.bad_signature else args.secret
    headers = signed_headers(secret, body, int(time.time()), FORM)
    request = urllib.request.Request(args.url.rstrip("/") + "/slack/events",
                                     data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, answer, retry = response.status, response.read(), None
    except urllib.error.HTTPError as error:
        status, answer, retry = error.code, error.read(), error.headers.get("Retry-After")
    except OSError as error:
        print(f"could not reach {args.url}: {error}", file=sys.stderr)
        return 1
    print(f"HTTP {status}" + (f" (Retry-After: {retry})" if retry else ""))
    if answer:
        print(answer.decode(errors="replace"))
    return 0 if status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
