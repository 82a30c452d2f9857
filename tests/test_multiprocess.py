"""Several bot processes behind a load balancer share one database and converge on the
knowledge version an admin activated in any of them."""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

from tests.standin import BotApiStandIn
from tests.test_run_command import start_maxbot

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
