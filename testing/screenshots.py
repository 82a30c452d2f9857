"""The README's screenshots: the real bot driven through the Bot API stand-in, its chats drawn
as a Telegram-like page and photographed with headless Chromium.

    .venv/bin/python -m testing.screenshots            # writes docs/*.png
    .venv/bin/python -m testing.screenshots --out DIR  # elsewhere

A Korean and an English user each send /start, a question the knowledge base answers and one
it does not (declined and queued for the secretariat); the secretariat answers one of them;
the HTML report of the day is exported as `maxbot export` does, in Korean and in English
(`--language en`), and photographed too. Needs Chromium (/usr/bin/chromium) and the
fonts-noto-cjk and fonts-noto-color-emoji fonts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import html
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.knowledge import load_index
from bot.reports.export import export
from bot.settings import Settings
from testing.harness import bot_settings, running_bot
from testing.standin import BotApiStandIn
from testing.standin.records import BotMessage

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
GROUP = -1001234
KST = dt.timezone(dt.timedelta(hours=9))
WIDTH = 520

# (file stem, what the user types) per language; the first is /start.
SCENES = {
    "ko": [("start", "/start"), ("answer", "국민성장펀드 총 규모는?"),
           ("decline", "초저리 대출 금리가 몇 %예요?")],
    "en": [("start", "/start"), ("answer", "How big is the National Growth Fund?"),
           ("decline", "What is the interest rate of the low-rate loan?")],
}
# More questions, so that the report has something to show.
MORE = ["M.AX 얼라이언스 분과 알려줘", "안녕하세요", "투자 한도가 기업당 얼마예요?",
        "직접투자는 얼마나 하나요?", "오늘 점심 뭐 먹지", "지방 투자 비중은?"]


@dataclass
class Scene:
    name: str
    typed: str
    replies: list[BotMessage]


PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #c9d8e6;
        font: 15px/1.4 "Noto Sans CJK KR", "Noto Sans", "Noto Color Emoji", sans-serif; }}
.bar {{ background: #517da2; color: #fff; padding: 10px 16px; font-weight: bold; }}
.bar small {{ display: block; font-weight: normal; opacity: .8; }}
.chat {{ padding: 12px; }}
.user {{ margin: 6px 0 10px auto; max-width: 75%; width: fit-content; background: #effdde;
         border-radius: 12px 12px 4px 12px; padding: 7px 11px; white-space: pre-wrap; }}
.bot {{ max-width: 88%; width: fit-content; background: #fff; border-radius: 12px 12px 12px 4px;
        padding: 7px 11px; white-space: pre-wrap; margin-top: 6px; }}
.keys {{ max-width: 88%; margin: 3px 0 8px; }}
.row {{ display: flex; gap: 3px; margin-top: 3px; }}
.key {{ flex: 1; background: rgba(81, 125, 162, .55); color: #fff; border-radius: 6px;
        padding: 6px 8px; text-align: center; font-size: 13.5px; }}
a {{ color: #2a73b5; }} code {{ font-family: monospace; }}
</style></head><body><div class="bar">{title}<small>{subtitle}</small></div>
<div class="chat">{chat}</div></body></html>"""


def chat_page(scene: Scene, language: str) -> str:
    """The scene as a Telegram-like chat: the user's message, then each reply of the bot with
    its inline keyboard. The bot's own HTML (Telegram's subset) is shown as it was sent."""
    parts = [f'<div class="user">{html.escape(scene.typed)}</div>']
    for reply in scene.replies:
        body = reply.source if reply.parse_mode == "HTML" else html.escape(reply.text or "")
        parts.append(f'<div class="bot">{body}</div>')
        rows = "".join('<div class="row">' + "".join(
            f'<div class="key">{html.escape(text)}</div>' for text, _ in row) + "</div>"
            for row in reply.keyboard)
        if rows:
            parts.append(f'<div class="keys">{rows}</div>')
    subtitle = "봇" if language == "ko" else "bot"
    return PAGE.format(title="국민성장펀드·M.AX 안내", subtitle=subtitle, chat="".join(parts))


def height_of(scene: Scene) -> int:
    """A window tall enough for the scene (Chromium photographs the window, not the page)."""
    lines = sum(max(1, len(line) // 34 + 1) for reply in scene.replies
                for line in (reply.text or "").splitlines() or [""])
    rows = sum(len(reply.keyboard) for reply in scene.replies)
    return min(2400, 100 + 21 * lines + 34 * rows + 30 * len(scene.replies))


def photograph(page: Path, shot: Path, width: int, height: int, profile: Path) -> None:
    result = subprocess.run([
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri(),
    ], capture_output=True, text=True, timeout=120, check=False)
    if not shot.exists():
        raise SystemExit(f"no screenshot of {page}: {result.stderr[-2000:]}")


async def record_scenes(work: Path) -> tuple[dict[str, list[Scene]], Settings]:
    """Run the bot, play the scenes; the scenes and the settings of the run (its database)."""
    async with BotApiStandIn() as tg:
        settings = bot_settings(tg, work, secretariat_chat_id=GROUP)
        index = await asyncio.to_thread(load_index, settings.knowledge_dir)
        scenes: dict[str, list[Scene]] = {}
        async with running_bot(tg, settings, index) as bot:
            member = tg.user(7001, "박사무")
            group = tg.group(GROUP, "국민성장펀드 사무국", members=[member])
            users = {"ko": tg.user(7101, "민지", username="minji_kim"),
                     "en": tg.user(7102, "Jane", language_code="en")}
            for language, user in users.items():
                scenes[language] = []
                for name, typed in SCENES[language]:
                    tg.send_text(user, typed)
                    replies = [await tg.wait_for_message(user, lambda m: m.kind == "sent")]
                    scenes[language].append(Scene(name, typed, replies))
            for n, text in enumerate(MORE):
                asker = tg.user(7200 + n, f"질문자{n}")
                tg.send_text(asker, text)
                await tg.wait_for_message(asker)
            post = await tg.wait_for_message(group, lambda m: "금리가" in (m.text or ""))
            tg.send_text(member, "금리는 아직 정해지지 않았습니다. 정해지면 공지합니다.",
                         chat=group, reply_to=post)
            await tg.wait_for_message(users["ko"], lambda m: "사무국 답변" in (m.text or ""))
            await tg.wait_for_message(group, lambda m: "전달했습니다" in (m.text or ""))
            assert bot.settings is settings
        return scenes, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.screenshots")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    opts = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (apt-get install -y chromium fonts-noto-cjk)",
              file=sys.stderr)
        return 1
    opts.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenes, settings = asyncio.run(record_scenes(work))
        for language, played in scenes.items():
            for scene in played:
                page = work / f"{scene.name}-{language}.html"
                page.write_text(chat_page(scene, language), encoding="utf-8")
                shot = opts.out / f"{scene.name}-{language}.png"
                photograph(page, shot, WIDTH, height_of(scene), work / "chromium")
                print(shot)
        today = dt.datetime.now(KST).date()
        for language in SCENES:
            report = work / f"report-{language}.html"
            export(settings, "html", today, None, report, language)
            shot = opts.out / f"report-{language}.png"
            photograph(report, shot, 1000, 1500, work / "chromium")
            print(shot)
        shutil.rmtree(work / "chromium", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
