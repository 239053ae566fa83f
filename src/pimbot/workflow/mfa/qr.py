"""QR codes for MFA enrolment: a PNG for chat and half-block text for a terminal.

The PNG is written with the standard library (zlib), so neither Pillow nor pypng is needed.
"""

from __future__ import annotations

import struct
import zlib

import qrcode
from qrcode.constants import ERROR_CORRECT_M

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def qr_matrix(data: str, border: int = 4) -> list[list[bool]]:
    """The QR modules (True = dark), quiet zone included."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    code.add_data(data)
    code.make(fit=True)
    return [[bool(module) for module in row] for row in code.get_matrix()]


def qr_png(data: str, scale: int = 8) -> bytes:
    """A black-on-white 1-bit grayscale PNG of the QR code for ``data``."""
    matrix = qr_matrix(data)
    size = len(matrix) * scale
    raw = bytearray()
    for row in matrix:
        line = bytearray(b"\x00")  # filter type: none
        line += _pack_bits([not dark for dark in row for _ in range(scale)])
        for _ in range(scale):
            raw += line
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


def qr_text(data: str, *, light_on_dark: bool = True) -> str:
    """The QR code drawn with half-block characters, two module rows per text line.

    With ``light_on_dark`` the light modules are drawn (for dark terminal backgrounds).
    """
    matrix = qr_matrix(data)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        cells = ((t != light_on_dark, b != light_on_dark) for t, b in zip(top, bottom, strict=True))
        lines.append("".join(glyphs[cell] for cell in cells))
    return "\n".join(lines) + "\n"


def _pack_bits(bits: list[bool]) -> bytes:
    out = bytearray()
    for start in range(0, len(bits), 8):
        byte = 0
        for offset, bit in enumerate(bits[start : start + 8]):
            if bit:
                byte |= 0x80 >> offset
        out.append(byte)
    return bytes(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
