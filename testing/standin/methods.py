"""Bot API methods of the bot itself: getMe, getUpdates, webhooks and the command menu."""


import asyncio
import itertools
import json
import re
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .state import (
    _NO_RESPONSE,
    _POLL_CONFLICT,
    _WEBHOOK_CONFLICT,
    ALL_UPDATE_TYPES,
    COMMAND_SCOPES,
    DEFAULT_UPDATE_TYPES,
    JSON,
    ApiError,
    _Described,
    _Params,
    _Poller,
)


class BotMethods:
    """getMe, getUpdates, setWebhook and the rest of the bot's own methods; mixed into
    BotApiStandIn."""

    # ------------------------------------------------------------------ Bot API methods

    def _m_true(self, p: _Params, files: Any, handler: Any) -> bool:
        return True

    def _m_get_me(self, p: _Params, files: Any, handler: Any) -> JSON:
        return self._bot_json | {
            "can_join_groups": True,
            "can_read_all_group_messages": not self.group_privacy,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, p: _Params, files: Any,
                             handler: tornado.web.RequestHandler) -> Any:
        if self._webhook_url:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = p.get_int("offset", 0) or 0
        limit = min(max(p.get_int("limit", 100) or 100, 1), 100)
        timeout = max(p.get_float("timeout", 0.0), 0.0)
        allowed = p.get_json("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise ApiError(400, "Bad Request: can't parse allowed_updates JSON object")
            self._allowed = frozenset(allowed) & ALL_UPDATE_TYPES or DEFAULT_UPDATE_TYPES
        updates = self._updates
        if offset > 0:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
        elif offset < 0:
            while len(updates) > -offset:
                updates.popleft()
        if self._poller is not None:
            # Telegram answers the older of two concurrent long polls with 409.
            self._poller.wake("terminated")
        if not updates and timeout > 0 and not self._stopping:
            poller = _Poller()
            self._poller = poller
            handler.poller = poller
            try:
                done, _ = await asyncio.wait({poller.future}, timeout=timeout)
                reason = poller.future.result() if done else "timeout"
                if self._poller is poller:
                    self._poller = None
                if reason == "closed":
                    return _NO_RESPONSE
                if reason == "terminated":
                    # PTB cancels its poll and immediately sends a final getUpdates; give the
                    # close notification a moment so that is not mistaken for a second bot.
                    await asyncio.sleep(self.conflict_grace)
                    if poller.closed:
                        return _NO_RESPONSE
                    raise ApiError(409, _POLL_CONFLICT)
                if reason == "webhook":
                    raise ApiError(409, _WEBHOOK_CONFLICT)
            finally:
                if self._poller is poller:
                    self._poller = None
                handler.poller = None
        return list(itertools.islice(updates, limit))

    def _m_set_webhook(self, p: _Params, files: Any, handler: Any) -> _Described:
        url = (p.get_str("url") or "").strip()
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        if not url:
            return self._delete_webhook()
        if not re.match(r"^https?://[^\s/?#]+", url, re.IGNORECASE):
            raise ApiError(400, "Bad Request: bad webhook: Wrong HTTP URL specified")
        secret = p.get_str("secret_token")
        if secret is not None and secret != "" and not re.match(r"^[A-Za-z0-9_-]{1,256}$", secret):
            raise ApiError(
                400, "Bad Request: bad webhook: secret token contains unallowed characters"
            )
        max_connections = p.get_int("max_connections", 40) or 40
        if not 1 <= max_connections <= 100:
            raise ApiError(
                400, "Bad Request: bad webhook: max_connections must be between 1 and 100"
            )
        allowed = p.get_json("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise ApiError(400, "Bad Request: can't parse allowed_updates JSON object")
            self._allowed = frozenset(allowed) & ALL_UPDATE_TYPES or DEFAULT_UPDATE_TYPES
            self._webhook_allowed = list(allowed)
        already = url == self._webhook_url and (secret or None) == self._webhook_secret
        self._webhook_url = url
        self._webhook_secret = secret or None
        self._webhook_max_connections = max_connections
        self._webhook_error = None
        if self._poller is not None:
            self._poller.wake("webhook")
        self._webhook_wakeup.set()
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    def _delete_webhook(self) -> _Described:
        had = bool(self._webhook_url)
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_allowed = None
        self._webhook_error = None
        return _Described(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _m_delete_webhook(self, p: _Params, files: Any, handler: Any) -> _Described:
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        return self._delete_webhook()

    def _m_get_webhook_info(self, p: _Params, files: Any, handler: Any) -> JSON:
        info: JSON = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url:
            info["max_connections"] = self._webhook_max_connections
            info["ip_address"] = "127.0.0.1"
            if self._webhook_allowed is not None:
                info["allowed_updates"] = self._webhook_allowed
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _command_key(self, p: _Params) -> tuple[str, str]:
        """The scope and language a command list is stored under, checked as Telegram does:
        a known scope type; for the chat scopes a chat the bot knows ("chat not found"), a
        group for the administrators' and a member's scopes; a two-letter ISO 639-1 code or
        none. (The error texts for a bad scope type and language code are our wording.)"""
        scope = p.get_json("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise ApiError(400, "Bad Request: unsupported bot command scope type")
        if scope["type"] in ("chat", "chat_administrators", "chat_member"):
            chat = self._target_chat(_Params({"chat_id": scope.get("chat_id")}))
            scope = {**scope, "chat_id": chat.id}
            if scope["type"] != "chat" and chat.group is None:
                raise ApiError(400, "Bad Request: chat is not a group")
            if scope["type"] == "chat_member":
                user_id = scope.get("user_id")
                if not isinstance(user_id, int) or self._user_json_or_none(user_id) is None:
                    raise ApiError(400, "Bad Request: user not found")
        language = p.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return self._scope_key(scope), language

    def _m_set_my_commands(self, p: _Params, files: Any, handler: Any) -> bool:
        commands = p.get_json("commands")
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        cleaned: list[JSON] = []
        for command in commands:
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not re.match(r"^[a-z0-9_]{1,32}$", name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        self._commands[self._command_key(p)] = cleaned
        return True

    def _m_get_my_commands(self, p: _Params, files: Any, handler: Any) -> list[JSON]:
        return list(self._commands.get(self._command_key(p), []))

    def _m_delete_my_commands(self, p: _Params, files: Any, handler: Any) -> bool:
        self._commands.pop(self._command_key(p), None)
        return True
