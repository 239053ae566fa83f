"""The Teams app package: ``manifest.json`` plus two icons, zipped for "Upload a custom app".

``pimbot manifest teams --app-id ID`` prints the manifest; ``--out FILE.zip`` writes the
package. The icons are drawn here (a small PNG encoder, no image library), so an installed
pimbot can build the package without the source tree; ``manifest/teams/`` holds the same
files as rendered for a placeholder app id (a test keeps them in step).
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from pimbot.domain.errors import ErrorCode, PimError

MANIFEST_SCHEMA = (
    "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
)
MANIFEST_VERSION = "1.17"
PLACEHOLDER_APP_ID = "00000000-0000-0000-0000-000000000000"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ACCENT = (0x2C, 0x2D, 0x30)
COLOR_ICON, OUTLINE_ICON = "color.png", "outline.png"

# Teams shows at most 10 commands per scope; these are the grammar's verbs people start with.
PERSONAL_COMMANDS = (
    ("help", "What pimbot can do"),
    ("roles", "My eligible and active roles"),
    ("activate", "activate ROLE [for DUR] [reason TEXT] [ticket ID] [code OTP]"),
    ("status", "My requests and active access"),
    ("deactivate", "deactivate ROLE: end my access now"),
    ("extend", "extend ROLE [for DUR] [code OTP]"),
    ("pending", "Requests waiting for my approval"),
    ("approve", "approve REQUEST [comment TEXT] [code OTP]"),
    ("deny", "deny REQUEST reason TEXT"),
    ("mfa enroll", "Set up the authenticator app (personal chat only)"),
)
TEAM_COMMANDS = (
    ("help", "What pimbot can do"),
    ("roles", "My eligible and active roles"),
    ("activate", "activate ROLE [for DUR] [reason TEXT] [ticket ID] [code OTP]"),
    ("status", "My requests and active access"),
    ("pending", "Requests waiting for my approval"),
    ("approve", "approve REQUEST [comment TEXT] [code OTP]"),
    ("deny", "deny REQUEST reason TEXT"),
    ("whois", "whois ROLE: who holds it now"),
    ("cancel", "cancel REQUEST"),
    ("breakglass", "breakglass ROLE reason TEXT [for DUR] [code OTP]"),
)


def check_app_id(app_id: str) -> str:
    if not GUID.match(app_id.strip()):
        raise PimError(ErrorCode.PARSE, f"'{app_id}' is not a Microsoft app id (a GUID)",
                       "pimbot manifest teams --app-id 1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
    return app_id.strip().lower()


def _commands(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"title": title, "description": description} for title, description in pairs]


def manifest_data(app_id: str, version: str = "1.0.0") -> dict[str, Any]:
    app_id = check_app_id(app_id)
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": "pimbot",
            "websiteUrl": "https://pimbot.example.com",
            "privacyUrl": "https://pimbot.example.com/privacy",
            "termsOfUseUrl": "https://pimbot.example.com/terms",
        },
        "name": {"short": "pimbot", "full": "pimbot — just-in-time privileged access"},
        "description": {
            "short": "Request, approve and review privileged access in Teams",
            "full": ("Nobody holds standing admin rights: people activate the roles they are "
                     "eligible for, for a bounded time, with a justification, an authenticator "
                     "code and, where the role demands it, an approver's button press. pimbot "
                     "grants the access and removes it at expiry."),
        },
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [{
            "botId": app_id,
            "scopes": ["personal", "team"],
            "supportsFiles": False,
            "isNotificationOnly": False,
            "commandLists": [
                {"scopes": ["personal"], "commands": _commands(PERSONAL_COMMANDS)},
                {"scopes": ["team"], "commands": _commands(TEAM_COMMANDS)},
            ],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
    }


def render_manifest(app_id: str) -> str:
    return json.dumps(manifest_data(app_id), indent=2, ensure_ascii=False) + "\n"


def build_package(app_id: str, out: Path) -> Path:
    """Write the uploadable zip (manifest.json, color.png, outline.png at its root)."""
    manifest = render_manifest(app_id)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", manifest)
        package.writestr(COLOR_ICON, color_icon())
        package.writestr(OUTLINE_ICON, outline_icon())
    return out


def color_icon() -> bytes:
    """192×192: a white key on the accent colour."""
    return _png(192, lambda x, y: (255, 255, 255, 255) if _key(x / 192, y / 192)
                else (*ACCENT, 255))


def outline_icon() -> bytes:
    """32×32: the same key in white on transparent (Teams' outline icon rules)."""
    return _png(32, lambda x, y: (255, 255, 255, 255) if _key((x + 0.5) / 32, (y + 0.5) / 32)
                else (0, 0, 0, 0))


def _key(u: float, v: float) -> bool:
    """A key: a ring at the left, a shaft to the right, two teeth down (unit square)."""
    ring = 0.16 ** 2 <= (u - 0.32) ** 2 + (v - 0.5) ** 2 <= 0.25 ** 2
    shaft = 0.5 <= u <= 0.86 and 0.45 <= v <= 0.55
    teeth = (0.66 <= u <= 0.72 or 0.78 <= u <= 0.84) and 0.55 <= v <= 0.68
    return ring or shaft or teeth


def _png(size: int, pixel: Any) -> bytes:
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(size))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(chunk(b"IHDR", header))
    out.write(chunk(b"IDAT", zlib.compress(rows, 9)))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()
