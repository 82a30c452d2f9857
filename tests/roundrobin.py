"""A reverse proxy for the tests: each request goes to the next backend in turn, as a load
balancer in front of several bot processes behind one webhook address would send it."""

from __future__ import annotations

import itertools
from types import TracebackType

import httpx
import tornado.httpserver
import tornado.netutil
import tornado.web

# What Telegram sends that a backend needs.
FORWARDED = ("content-type", "x-telegram-bot-api-secret-token")


class RoundRobin:
    """Forwards POST /<path> to each backend URL in turn; a backend that is down gets the
    request's turn anyway and Telegram hears 502 (as from nginx) and delivers again."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.forwarded: list[tuple[str, int]] = []  # (backend, status) per request
        self._turns = itertools.cycle(range(len(backends)))
        self._server: tornado.httpserver.HTTPServer | None = None
        self._client: httpx.AsyncClient | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RoundRobin:
        proxy = self

        class Forward(tornado.web.RequestHandler):
            async def post(self, path: str) -> None:
                backend = proxy.backends[next(proxy._turns)]
                headers = {k: v for k, v in self.request.headers.items()
                           if k.lower() in FORWARDED}
                assert proxy._client is not None
                try:
                    response = await proxy._client.post(f"{backend}/{path}", headers=headers,
                                                        content=self.request.body)
                except httpx.HTTPError:
                    proxy.forwarded.append((backend, 502))
                    self.set_status(502)
                    return
                proxy.forwarded.append((backend, response.status_code))
                self.set_status(response.status_code)
                self.finish(response.content)

        app = tornado.web.Application([(r"/(.*)", Forward)], log_function=lambda handler: None)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        # trust_env=False: a proxy from the environment must never see loopback traffic.
        self._client = httpx.AsyncClient(trust_env=False, timeout=30.0)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
