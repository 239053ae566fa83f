"""A client that sends the headers of a POST and only part of its body, as an attacker would.

aiohttp's client always sends the whole body; these are raw sockets, so a test can hold a
request open mid-body, drop it, or read the answer to a body it never finished.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

ANSWER_WAIT_S = 30.0  # a hang is a failure, not a timing check: generous on a busy machine


@dataclass
class Partial:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def status(self) -> tuple[int, dict[str, str]]:
        """The answer's status and headers (lower-case names); fails if none comes."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), ANSWER_WAIT_S)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (reads to the end of the stream)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), ANSWER_WAIT_S):
                pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    def drop(self) -> None:
        self.writer.transport.abort()


async def partial_post(port: int, path: str, declared: int, sent: bytes,
                       headers: dict[str, str] | None = None) -> Partial:
    """POST ``path`` on 127.0.0.1:``port`` declaring ``declared`` body bytes, sending ``sent``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             f"Content-Length: {declared}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + sent)
    await writer.drain()
    return Partial(reader, writer)
