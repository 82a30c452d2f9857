"""A TCP relay between one bot process and PostgreSQL that a test can cut: the network
partition that leaves a process unable to reach its database while it still reaches
Telegram (and the other processes still reach both)."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class Partition:
    """Relays connections to `host:port` until `cut()`: then every connection is closed and
    new ones are refused, until `heal()`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.target_port = host, port
        self.port = 0
        self.cut_off = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Partition:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def heal(self) -> None:
        self.cut_off = False

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(self.host,
                                                                         self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, server_writer}
        await asyncio.gather(self._pump(reader, server_writer),
                             self._pump(server_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self.cut_off:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()
        self._writers.discard(writer)
