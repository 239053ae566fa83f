"""The console's standard output, watched: when its reader goes away (``| head -2``) the
console stops taking input after the line in hand, and ``pimbot run`` exits 141 (``pipes``).
"""

from __future__ import annotations

import asyncio
import sys

from pimbot_console.app import StdinLines


class StdoutWriter:
    """The console ``Screen``'s writer: ``sys.stdout`` until its reader goes away; then
    ``closed`` is set and every write (that one included) is dropped."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def __call__(self, text: str) -> None:
        if self.closed.is_set():
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            from pimbot_server.pipes import silence_stdout

            silence_stdout()
            self.closed.set()


class LinesWhileOpen(StdinLines):
    """Standard input's lines, ending (as at end of input) once ``output`` has closed: what
    the remaining lines would answer, nobody would read."""

    def __init__(self, output: StdoutWriter) -> None:
        super().__init__()
        self._output = output

    async def readline(self) -> str | None:
        if self._output.closed.is_set():
            return None
        line = asyncio.ensure_future(super().readline())
        closed = asyncio.ensure_future(self._output.closed.wait())
        try:
            await asyncio.wait({line, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not line.done():
                line.cancel()
        if self._output.closed.is_set():
            return None
        return line.result()
