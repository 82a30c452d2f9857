"""The "/" menu and /help: each person is offered the commands they may use, in Korean or,
for Telegram's English users, in English."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from telegram.ext import CommandHandler, ConversationHandler

from bot.replies import command_menu
from testing.harness import RunningBot, bot_settings, running_bot

GROUP = -1001600
ADMIN = 9301
ABSENT_ADMIN = 9302  # never opened the bot: Telegram has no chat with them
USER_COMMANDS = ["start", "topics", "myquestions", "check", "cancel", "lang", "help"]
DESK_COMMANDS = ["pending", "followup", "stats", "tofaq"]
ADMIN_COMMANDS = ["reload", "kb", "suggestions", "review"]


@pytest.fixture
async def desk(tg, tmp_path: Path, real_index, database_url: str):
    """The bot with a secretariat group (one member) and two admins, one unknown to Telegram."""
    admin = tg.user(ADMIN, "관리자")
    member = tg.user(7601, "김사무")
    group = tg.group(GROUP, "국민성장펀드 사무국", members=[member])
    settings = bot_settings(tg, tmp_path, database_url=database_url, secretariat_chat_id=GROUP,
                            admin_user_ids=frozenset({ADMIN, ABSENT_ADMIN}))
    async with running_bot(tg, settings, real_index) as bot:
        bot.admin, bot.member, bot.group = admin, member, group
        yield bot


def listed(tg, scope: dict, language: str = "") -> list[str]:
    return [c["command"] for c in tg.commands(scope, language)]


async def test_the_menu_is_registered_per_scope_and_language_and_a_refused_scope_is_logged(
        desk: RunningBot, caplog: pytest.LogCaptureFixture) -> None:
    tg = desk.tg
    caplog.set_level(logging.WARNING, logger="bot.handlers.menu")
    # Two languages × (private chats, the group, two admins)
    await tg.wait_until(lambda: len(tg.calls("setMyCommands")) == 8)

    private = {"type": "all_private_chats"}
    assert listed(tg, private) == listed(tg, private, "en") == USER_COMMANDS
    assert tg.commands(private)[0]["description"] == "처음 화면과 예시 질문"
    assert tg.commands(private, "en")[0]["description"] == "Welcome and example questions"
    group = {"type": "chat", "chat_id": GROUP}
    assert listed(tg, group) == listed(tg, group, "en") == [*DESK_COMMANDS, "help"]
    assert tg.commands(group)[0]["description"] == "열린 문의 목록"
    admin = {"type": "chat", "chat_id": ADMIN}
    assert listed(tg, admin) == listed(tg, admin, "en") == [
        *USER_COMMANDS, *DESK_COMMANDS, *ADMIN_COMMANDS]
    assert tg.commands(admin, "en")[-3]["description"] == "Knowledge base version and state"
    assert listed(tg, {"type": "default"}) == [], "other groups get no menu"

    # Telegram refused the admin it has no chat with: logged, and the bot serves on.
    assert listed(tg, {"type": "chat", "chat_id": ABSENT_ADMIN}) == []
    def refused() -> list[str]:
        return [r.getMessage() for r in caplog.records if str(ABSENT_ADMIN) in r.getMessage()]

    await tg.wait_until(lambda: len(refused()) == 2)
    assert refused() == [
        f"command menu for chat {ABSENT_ADMIN} (language default) not registered: Chat not found",
        f"command menu for chat {ABSENT_ADMIN} (language en) not registered: Chat not found"]
    user = tg.user(7602, "민지")
    tg.send_text(user, "/start")
    assert "국민성장펀드" in (await tg.wait_for_message(user)).text


def test_every_command_in_the_menu_is_handled_and_both_languages_list_the_same(
        tmp_path: Path, tg) -> None:
    from bot.app import build_application

    app = build_application(bot_settings(tg, tmp_path, secretariat_chat_id=GROUP))
    handled: set[str] = set()
    for handler in (h for group in app.handlers.values() for h in group):
        inner = ([*handler.entry_points, *handler.fallbacks]
                 if isinstance(handler, ConversationHandler) else [handler])
        handled |= {c for h in inner if isinstance(h, CommandHandler) for c in h.commands}
    app.bot_data["services"].answerer.shutdown()
    for language in ("ko", "en"):
        menu = command_menu(language)
        names = [c.command for c in menu.user + menu.desk + menu.admin]
        assert names == USER_COMMANDS + DESK_COMMANDS + ADMIN_COMMANDS
        assert set(names) <= handled


async def test_a_user_sees_only_the_user_commands_in_help(desk: RunningBot) -> None:
    user = desk.tg.user(7603, "하은")
    desk.tg.send_text(user, "/help")
    text = (await desk.tg.wait_for_message(user)).text
    assert "/topics 주제별 자주 묻는 질문" in text and "/check" in text
    assert "/pending" not in text and "/reload" not in text and "사무국 그룹" not in text


async def test_a_secretariat_member_sees_the_desk_commands_in_help(desk: RunningBot) -> None:
    desk.tg.send_text(desk.member, "/help", chat=desk.group)
    text = (await desk.tg.wait_for_message(desk.group)).text
    assert "/pending 열린 문의 목록" in text and "/followup 번호" in text
    assert "/reload" not in text and "/kb" not in text
    desk.tg.send_text(desk.member, "/help")  # in a private chat: a member all the same
    assert "/pending" in (await desk.tg.wait_for_message(desk.member)).text


async def test_an_admin_sees_the_admin_commands_too_in_help(desk: RunningBot) -> None:
    desk.tg.send_text(desk.admin, "/help")
    text = (await desk.tg.wait_for_message(desk.admin)).text
    assert "/reload 지식베이스 다시 읽기" in text and "/kb" in text
    assert "/pending" in text and "/topics" in text
