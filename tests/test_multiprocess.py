"""Several bot processes behind a load balancer share one database: they converge on the
knowledge version an admin activated in any of them, handle each update once, continue each
other's /check conversations, and take over the work of one that is killed."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlmodel import select

from bench.crash import QUESTIONS, REPEAT_NOTE, start_bot, wait_for_change
from bot.delivery.inbox import FIRST_SENDS_IN_FLIGHT, lock_key
from bot.storage.database import Database
from bot.storage.models import FollowUp, InboxUpdate, Question
from testing.standin import BotApiStandIn
from testing.throwaway_db import asyncpg_dsn
from tests.partition import Partition
from tests.roundrobin import RoundRobin
from tests.test_eligibility import walk
from tests.test_run_command import free_port, start_maxbot

ADMIN = 9400


async def test_two_processes_converge_on_the_version_an_admin_reloads_in_one(
        tmp_path: Path, knowledge_copy: Path, database_url: str) -> None:
    shared = {"DATABASE_URL": database_url, "KNOWLEDGE_DIR": str(knowledge_copy),
              "ADMIN_USER_IDS": str(ADMIN), "KNOWLEDGE_SYNC_SECONDS": "0.5",
              "LOG_LEVEL": "INFO", "USER_QUESTIONS_PER_MINUTE": "1000"}
    async with (BotApiStandIn(token="111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") as tg_a,
                BotApiStandIn(token="222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB") as tg_b):
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first = await start_maxbot(tg_a, tmp_path / "a", **shared)
        second = await start_maxbot(tg_b, tmp_path / "b", **shared)
        try:
            user_b = tg_b.user(9500, "사용자")
            tg_b.send_text(user_b, "국민성장펀드 총 규모는?")
            assert "150조원" in (await tg_b.wait_for_message(user_b, timeout=60)).text

            faq = knowledge_copy / "faq" / "fund.yaml"
            faq.write_text(faq.read_text(encoding="utf-8").replace("150조원", "170조원"),
                           encoding="utf-8")
            admin = tg_a.user(ADMIN, "관리자")
            tg_a.user(9501, "기다림")
            await tg_a.wait_until(lambda: tg_a.calls("getUpdates"), timeout=60)
            tg_a.send_text(admin, "/reload")
            assert "새로 읽었습니다" in (await tg_a.wait_for_message(admin, timeout=30)).text

            for _ in range(60):  # B follows once its sync sees the version and it rebuilds
                tg_b.send_text(user_b, "국민성장펀드 총 규모는?")
                reply = await tg_b.wait_for_message(user_b, timeout=30)
                if "170조원" in reply.text:
                    break
                await asyncio.sleep(1)
            assert "170조원" in reply.text
        finally:
            for name, process in (("A", first), ("B", second)):
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(process.wait(), timeout=30)
                log = process.log_path.read_text(encoding="utf-8", errors="replace")
                print(f"--- process {name} (exit {process.returncode})\n", log[-3000:])
                assert process.returncode == 0
    shutil.rmtree(tmp_path / "a", ignore_errors=True)


async def _inbox(database: Database) -> list[InboxUpdate]:
    async with database.session() as session:
        return list((await session.exec(select(InboxUpdate))).all())


async def _all_done(database: Database, tg: BotApiStandIn, count: int) -> None:
    """Until `count` updates are in the inbox and every one is done."""
    async def done() -> bool:
        rows = await _inbox(database)
        return len(rows) >= count and all(row.state == "done" for row in rows)

    while not await done():
        with contextlib.suppress(TimeoutError):
            await tg.wait_until(lambda: False, timeout=0.2)


@dataclass
class Deployment:
    """Two `maxbot run` processes behind one webhook address, on one PostgreSQL database."""

    tg: BotApiStandIn
    proxy: RoundRobin
    processes: list[asyncio.subprocess.Process]
    logs: list[Path]
    database: Database

    def log(self, n: int) -> str:
        return self.logs[n].read_text(encoding="utf-8", errors="replace")


@contextlib.asynccontextmanager
async def two_processes(tmp_path: Path, database_url: str, first_url: str | None = None,
                        **extra: str) -> AsyncIterator[Deployment]:
    """Started, both serving; stopped with SIGTERM at the end, their logs printed.
    `first_url`: the first process's way to the same database, if another."""
    if database_url.startswith("sqlite"):
        pytest.skip("several processes on several machines share PostgreSQL")
    ports = [free_port(), free_port()]
    async with BotApiStandIn() as tg, RoundRobin(
            [f"http://127.0.0.1:{port}" for port in ports]) as proxy:
        shared = {"WEBHOOK_URL": f"{proxy.url}/telegram", "WEBHOOK_LISTEN": "127.0.0.1",
                  "WEBHOOK_SECRET": "s3cret-header-value", "USER_QUESTIONS_PER_MINUTE": "1000",
                  **extra}
        processes = []
        for name, port, url in zip("ab", ports, [first_url or database_url, database_url],
                                   strict=True):
            (tmp_path / name).mkdir()
            processes.append(await start_bot(tg, tmp_path / name, url, f"{name}.log",
                                             WEBHOOK_PORT=str(port), **shared))
        logs = [tmp_path / "a" / "a.log", tmp_path / "b" / "b.log"]
        database = Database(database_url, tmp_path / "reader-spool.jsonl")
        try:
            await tg.wait_until(lambda: all("Application started" in log.read_text()
                                            for log in logs), timeout=120)
            yield Deployment(tg, proxy, processes, logs, database)
        finally:
            await database.close()
            for process, log in zip(processes, logs, strict=True):
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(process.wait(), timeout=30)
                print(f"--- {log.name} (exit {process.returncode})\n", log.read_text()[-3000:])


async def test_two_processes_behind_one_webhook_handle_each_update_once_share_a_check_and_take_over_from_a_killed_one(  # noqa: E501
        tmp_path: Path, database_url: str) -> None:
    async with two_processes(tmp_path, database_url) as deployment:
        tg, proxy, database = deployment.tg, deployment.proxy, deployment.database
        first, second = deployment.processes

        # Each knows the other runs, and sends half of Telegram's rate.
        await tg.wait_until(lambda: all("2 bot processes share Telegram's limit" in
                                        deployment.log(n) for n in (0, 1)), timeout=30)

        # Every update handled once, by one process or the other, and together they keep to
        # Telegram's limit (at 28 a second each, 40 replies drew 429s).
        users = [tg.user(610_000 + n, f"동시{n}") for n in range(40)]
        for n, user in enumerate(users):
            tg.send_text(user, QUESTIONS[n % len(QUESTIONS)])
        await _all_done(database, tg, len(users))
        assert all(len(tg.messages_to(user)) == 1 for user in users)
        assert len({row.owner for row in await _inbox(database)}) == 2, "both took a share"
        assert tg.too_many_requests == 0, tg.rejections[:3]
        sent = sorted(call.at for call in tg.calls("sendMessage"))
        print("most replies in any second, both processes:",
              max(sum(1 for t in sent if first_at <= t < first_at + 1) for first_at in sent))

        # A running check goes on, whichever process gets the next step.
        asker = tg.user(620_000, "최대표")
        tg.send_text(asker, "/check")
        step = await tg.wait_for_message(asker, timeout=30)
        assert "1/6" in step.text
        result = await walk(tg, asker, step, "field:ai", "purpose:equity", "size:1b-10b",
                            "alliance:member", "sub-alliance:humanoid",
                            "region:non-capital")
        assert "지원 방식 확인 결과" in result.text and "분과: 휴머노이드" in result.text
        steps = [backend for backend, _ in proxy.forwarded[-7:]]
        assert len(set(steps)) == 2, "the steps went to both processes"

        # One process killed mid-burst: the other answers the rest, each once.
        burst = [tg.user(630_000 + n, f"폭주{n}") for n in range(60)]
        for n, user in enumerate(burst):
            tg.send_text(user, QUESTIONS[n % len(QUESTIONS)])
        await tg.wait_until(lambda: sum(1 for u in burst if tg.messages_to(u)) >= 15,
                            timeout=60)
        first.kill()
        await first.wait()
        await _all_done(database, tg, len(users) + 7 + len(burst))
        # A reply in flight at the kill is sent again, saying it may be a repeat.
        assert all(tg.messages_to(u) for u in burst)
        assert all(REPEAT_NOTE in m.text for u in burst for m in tg.messages_to(u)[1:])
        async with database.session() as session:
            asked = (await session.exec(select(Question.person_id))).all()
        assert sorted(asked) == sorted(u.id for u in users + burst)
    assert second.returncode == 0


async def test_a_process_whose_lock_connection_is_cut_is_not_taken_for_dead_and_no_one_is_answered_twice(  # noqa: E501
        tmp_path: Path, database_url: str) -> None:
    """A's lock, its sign of life, is on one database connection; a server restart, a
    proxy's idle timeout or an administrator can cut it while A goes on answering. B must not
    take A's updates over for that: both would answer them."""
    async with two_processes(tmp_path, database_url) as deployment:
        tg, database = deployment.tg, deployment.database
        owner_a = re.search(r"inbox: this process is (\w+)", deployment.log(0)).group(1)
        # Both have replies in flight and more waiting when A's lock connection goes.
        tg.hold("sendMessage")
        users = [tg.user(660_000 + n, f"사용자{n}") for n in range(24)]
        for n, user in enumerate(users):
            tg.send_text(user, QUESTIONS[n % len(QUESTIONS)])
        await tg.wait_until(lambda: tg.held("sendMessage") == 2 * FIRST_SENDS_IN_FLIGHT,
                            timeout=120)

        # Cut it, and again whenever A holds it again, until B has looked while it was free.
        def b_looked() -> bool:
            log = deployment.log(1)
            return (f"lock of process {owner_a} is free" in log
                    or "left unfinished by a stopped process" in log)

        cuts = 0
        while not b_looked():
            cuts += await cut_lock_connection(database_url, owner_a)
            await wait_for_change(tg, 0.05)
        assert cuts >= 1
        tg.release()

        await _all_done(database, tg, len(users))
        assert {u.id: len(tg.messages_to(u)) for u in users} == {u.id: 1 for u in users}
        assert "left unfinished by a stopped process" not in deployment.log(1)
        # A holds it again at its next check, a second after the last cut (later on a busy
        # machine: the last cut may come just before the last update is done).
        deadline = asyncio.get_running_loop().time() + 30
        while ("lock held again" not in deployment.log(0)
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.1)
        assert "lock held again" in deployment.log(0)


async def cut_lock_connection(database_url: str, owner: str) -> int:
    """Terminate, from the server's side, the connection holding a process's inbox lock (if
    it holds it now); how many were terminated."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return len(await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            "AND (classid::bigint << 32) | objid::bigint = $1", lock_key(owner)))
    finally:
        await connection.close()


async def test_two_processes_together_post_at_most_20_messages_a_minute_to_the_secretariat_group(
        tmp_path: Path, database_url: str) -> None:
    """Telegram takes 20 messages a minute in a group. Each process used to keep that limit
    for itself, so two posted up to 40 follow-ups a minute and drew 429s; each now sends
    its share, 10, and the rest wait for the next minute."""
    group = -1001977
    async with two_processes(tmp_path, database_url,
                             SECRETARIAT_CHAT_ID=str(group)) as deployment:
        tg, database = deployment.tg, deployment.database
        tg.group(group, "사무국", members=[tg.user(7_000_002, "사무국")])
        await tg.wait_until(lambda: all("and 10 a minute to a group" in deployment.log(n)
                                        for n in (0, 1)), timeout=30)
        askers = [tg.user(670_000 + n, f"문의자{n}") for n in range(24)]
        for asker in askers:
            tg.send_text(asker, "투자 한도가 기업당 얼마예요?")

        # Both processes post until each has had its share of the minute, and then wait.
        await tg.wait_until(lambda: all("has had this process's share of its limit" in
                                        deployment.log(n) for n in (0, 1)), timeout=120)
        posts = [m for m in tg.messages_to(group) if m.kind == "sent"]
        assert len(posts) == 20
        assert tg.too_many_requests == 0, tg.rejections[:3]
        async with database.session() as session:
            waiting = (await session.exec(select(FollowUp.id).where(
                FollowUp.group_message_id.is_(None)))).all()
        assert len(waiting) == 4, "promised, and posted in the next minute"


async def test_a_process_cut_off_from_the_database_sends_nothing_for_the_updates_another_took_over(
        tmp_path: Path, database_url: str) -> None:
    """A loses its database (a partition: Telegram it still reaches) with replies waiting
    for their turn. B takes A's updates over after 3 s and answers them. A must not send
    them as well: it holds a reply while its lock has not been seen held for 2 s, and, its
    database back, finds the updates are B's. Only the replies Telegram had in flight at the
    cut (A's 8 at most) can reach their users twice, B's copy saying it may be a repeat."""
    if database_url.startswith("sqlite"):
        pytest.skip("several processes on several machines share PostgreSQL")
    host, port = re.search(r"@([\d.]+):(\d+)/", database_url).groups()
    async with Partition(host, int(port)) as partition, two_processes(
            tmp_path, database_url,
            first_url=database_url.replace(f"{host}:{port}", f"127.0.0.1:{partition.port}")
    ) as deployment:
        tg, database = deployment.tg, deployment.database
        await tg.wait_until(lambda: all("2 bot processes share Telegram's limit" in
                                        deployment.log(n) for n in (0, 1)), timeout=30)
        tg.hold("sendMessage")
        users = [tg.user(680_000 + n, f"사용자{n}") for n in range(32)]
        for n, user in enumerate(users):
            tg.send_text(user, QUESTIONS[n % len(QUESTIONS)])
        await tg.wait_until(lambda: tg.held("sendMessage") == 2 * FIRST_SENDS_IN_FLIGHT,
                            timeout=120)
        while len(await _replying(database)) <= 2 * FIRST_SENDS_IN_FLIGHT:
            await wait_for_change(tg, 0.1)  # until replies are marked and wait for their turn

        partition.cut()
        await tg.wait_until(lambda: "left unfinished by a stopped process" in
                            deployment.log(1), timeout=60)
        tg.release()
        await tg.wait_until(lambda: all(tg.messages_to(u) for u in users), timeout=120)
        partition.heal()
        await _all_done(database, tg, len(users))
        # A, its database back, finds the updates B's and leaves them; then it is stopped.
        with contextlib.suppress(TimeoutError):
            await tg.wait_until(lambda: "left to that process" in deployment.log(0),
                                timeout=60)
        first = deployment.processes[0]
        first.kill()
        await first.wait()

        twice = {u.id: [m.text for m in tg.messages_to(u)] for u in users
                 if len(tg.messages_to(u)) > 1}
        print("users answered twice (A's replies on their way at the cut):", len(twice))
        assert len(twice) <= FIRST_SENDS_IN_FLIGHT, twice
        assert all(len(texts) == 2 and any(REPEAT_NOTE in t for t in texts)
                   for texts in twice.values()), twice
        assert "left to that process" in deployment.log(0)


async def _replying(database: Database) -> list[int]:
    async with database.session() as session:
        return list((await session.exec(select(InboxUpdate.update_id).where(
            InboxUpdate.state == "replying"))).all())
