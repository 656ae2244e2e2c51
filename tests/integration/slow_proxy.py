"""A TCP proxy on 127.0.0.1 that delays every server-to-client chunk: a slow API server.

It works below TLS (the bytes pass through untouched), so the client still verifies the API
server's own certificate, which is valid for 127.0.0.1. Each chunk the server sends waits
``delay`` seconds before it is written to the client, in order; the client's bytes go through
at once. It runs its own asyncio loop in a daemon thread::

    with SlowProxy("127.0.0.1", 17443, delay=0.2) as proxy:
        ...  # point a kubeconfig at https://127.0.0.1:{proxy.port}
"""

from __future__ import annotations

import asyncio
import threading
import typing as t

CHUNK = 64 * 1024


class SlowProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, delay: float) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.port = 0
        self.connections = 0
        self.chunks_delayed = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slow-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> asyncio.AbstractServer:
        # Port 0: the kernel picks a free port, so parallel runs never collide.
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, delay=0.0),
                self._pipe(server_reader, client_writer, delay=self.delay),
            )
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delay: float) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if delay:
                    self.chunks_delayed += 1
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            # Half-close: the other direction may still carry an answer.
            if writer.can_write_eof() and not writer.is_closing():
                try:
                    writer.write_eof()
                except OSError:
                    pass


def point_kubeconfig_at(kubeconfig: str, port: int, dest: str) -> str:
    """A copy of ``kubeconfig`` whose clusters' servers are https://127.0.0.1:<port>."""
    import yaml

    with open(kubeconfig, encoding="utf-8") as handle:
        config: dict[str, t.Any] = yaml.safe_load(handle)
    for cluster in config.get("clusters") or []:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    with open(dest, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return dest
