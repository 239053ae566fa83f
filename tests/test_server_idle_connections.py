"""A real ``pimbot run`` closes connections that hold it without asking anything.

An outsider can open connections and send nothing, or send headers a byte at a time, or keep
a finished connection alive, each holding a socket and a buffer; aiohttp's own default keeps
such a connection for an hour. pimbot's listener closes each after ``KEEPALIVE_S`` idle: the
test only asserts that the server ends every one of them itself (an end of file, long
before aiohttp's hour), never how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from pimbot_server.listener import KEEPALIVE_S
from server_process import clean_env, free_port, pimbot_command

GUARD = KEEPALIVE_S * 4 + 30  # far under aiohttp's default of 3,630 s


async def ended_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    return await asyncio.wait_for(reader.read(), GUARD)


async def test_silent_slow_and_idle_connections_are_closed_by_pimbot(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path, PIMBOT_ADAPTERS="none", PIMBOT_HOST="127.0.0.1",
                    PIMBOT_PORT=str(port))
    process = await asyncio.create_subprocess_exec(
        *pimbot_command(), "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/readyz") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("pimbot run never became ready")
        silent = await asyncio.open_connection("127.0.0.1", port)
        slow = await asyncio.open_connection("127.0.0.1", port)
        slow[1].write(b"POST /slack/events HTTP/1.1\r\nHost: pimbot\r\nX-Slack-Sig")
        idle = await asyncio.open_connection("127.0.0.1", port)
        idle[1].write(b"GET /healthz HTTP/1.1\r\nHost: pimbot\r\n\r\n")
        for _, writer in (silent, slow, idle):
            await writer.drain()
        got = await asyncio.gather(*(ended_by_server(reader) for reader, _ in
                                     (silent, slow, idle)))
        assert got[0] == b"", "nothing sent, nothing answered: closed"
        assert b" 200 " not in got[1], "headers never finished: closed, not answered"
        assert got[2].startswith(b"HTTP/1.1 200"), "answered, then closed once idle"
        for _, writer in (silent, slow, idle):
            writer.close()
        assert process.returncode is None, "pimbot is still serving"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
