"""The command menu and /help: each person is shown the commands they may use.

At start the "/" menu is registered per scope and language (bot/templates/<language>/
commands.yaml): private chats get the user commands, the secretariat group its desk commands,
each admin's private chat all of them; Korean by default, English for Telegram's `en`.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScope, BotCommandScopeAllPrivateChats, Update
from telegram import BotCommandScopeChat as ChatScope
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.handlers.secretariat import is_secretariat
from bot.language import speaks
from bot.replies import Command, CommandMenu, command_menu, render
from bot.services import services_of
from bot.settings import Settings

log = logging.getLogger(__name__)

# Telegram's language_code for each menu language; "" is everyone else (Korean).
MENU_LANGUAGES = {"": "ko", "en": "en"}


def menus(settings: Settings, menu: CommandMenu) -> list[tuple[BotCommandScope, list[Command]]]:
    """Each scope with the commands it lists, in one language."""
    help_command = [c for c in menu.user if c.command == "help"]
    scoped: list[tuple[BotCommandScope, list[Command]]] = [
        (BotCommandScopeAllPrivateChats(), menu.user)]
    if settings.secretariat_chat_id is not None:
        scoped.append((ChatScope(settings.secretariat_chat_id), menu.desk + help_command))
    scoped += [(ChatScope(admin), menu.user + menu.desk + menu.admin)
               for admin in sorted(settings.admin_user_ids)]
    return scoped


async def register_commands(bot: Bot, settings: Settings) -> None:
    """Set the "/" menu of every scope and language. A scope Telegram refuses (an admin who
    never opened the bot is "chat not found") is logged and the others are still set: the
    menu is a convenience, never a reason not to serve."""
    for language_code, language in MENU_LANGUAGES.items():
        for scope, commands in menus(settings, command_menu(language)):
            listed = [BotCommand(c.command, c.description) for c in commands]
            try:
                await bot.set_my_commands(listed, scope=scope, language_code=language_code)
            except TelegramError as exc:
                where = " ".join(str(v) for v in (scope.type, getattr(scope, "chat_id", ""))
                                 if v != "")
                log.warning("command menu for %s (language %s) not registered: %s", where,
                            language_code or "default", exc)


async def show_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: how to ask, and the commands this person may use."""
    services = services_of(context)
    user = update.effective_user
    chat_id = update.effective_chat.id if update.effective_chat else None
    desk = await is_secretariat(services, context.bot, user, chat_id)
    admin = user.id in services.settings.admin_user_ids
    language = speaks(user, context.user_data)
    menu = command_menu(language)
    await update.effective_message.reply_html(render(
        "help", language, bot_username=context.bot.username or "bot", commands=menu.user,
        desk=menu.desk if desk else [], admin=menu.admin if admin else []))


def handlers() -> list[BaseHandler]:
    return [CommandHandler("help", show_help)]
