"""Run the stand-in as its own process, for benchmarks.

    python -m testing.standin --port 8081 --token 123:abc

Prints ``listening on http://127.0.0.1:<port>`` once ready.  Besides the Bot API it serves:

* ``POST /_standin/inject`` with JSON ``{"count": N, "users": K, "text": "hello",
  "first_user_id": 1000000}``: queue N text updates spread over K users;
* ``GET /_standin/stats``: request counts per method, 429s, queued/delivered updates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .limits import SlidingWindow
from .server import BotApiStandIn
from .state import DEFAULT_TOKEN


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m testing.standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument(
        "--global-limit", type=int, default=30, help="messages per second for the bot, 0 = off"
    )
    parser.add_argument(
        "--no-chat-limits", action="store_true", help="disable per-chat and per-group limits"
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    kwargs = {}
    if args.no_chat_limits:
        kwargs = {"private_chat_limit": None, "group_chat_limit": None}
    standin = BotApiStandIn(
        args.token,
        host=args.host,
        port=args.port,
        global_limit=SlidingWindow(args.global_limit, 1.0) if args.global_limit > 0 else None,
        log_limit=10_000,  # a long benchmark must not grow memory without bound
        **kwargs,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with standin:
        print(f"listening on {standin.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
