"""All configuration, read once from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.answering import AnsweringRules


class Settings(BaseSettings):
    # An empty value (`SECRETARIAT_CHAT_ID=` as .env.example has it) means "not set": the
    # default applies, so copying .env.example and filling in only the token is enough.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      env_ignore_empty=True)

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org"
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    secretariat_chat_id: int | None = None
    # When the secretariat group gets its daily list of follow-ups open for over a day (KST).
    digest_time: dt.time = dt.time(9, 0)
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None
    # Off only for measuring the bot's own throughput against a stand-in; never in production.
    rate_limiter: bool = True
    user_questions_per_minute: int = Field(default=10, ge=1)
    max_question_chars: int = Field(default=1000, ge=10)
    # How long a failing send (5xx, network, timeout, 429) is tried again before it counts
    # as failed: a question's reply is then listed in /pending, a follow-up post retried.
    send_retry_seconds: float = Field(default=120, ge=0)

    # Storage and knowledge
    database_url: str = "sqlite+aiosqlite:///var/maxbot.db"
    # Questions wait here while the database is unreachable; keep it off the database's disk.
    spool_path: Path = Path("var/spool.jsonl")
    knowledge_dir: Path = Path("knowledge")
    knowledge_max_age_days: int = Field(default=365, ge=1)
    # Reload by itself when files under KNOWLEDGE_DIR change.
    knowledge_watch: bool = False
    # How often each process checks the database for a knowledge version another activated.
    knowledge_sync_seconds: float = Field(default=30, gt=0)
    analyzer: str = "kiwi"
    # The knowledge's texts as the analyzer read them, kept between starts (index/token_cache.py).
    cache_dir: Path = Path("var/cache")
    # Conversation states and user data are written after each update that changed them
    # (bot/delivery/inbox.py); this often for changes made outside one, and at shutdown.
    persistence_interval_seconds: float = Field(default=5, gt=0)

    # "Did you mean" buttons (the decision itself is fitted: knowledge/model/, `maxbot fit`)
    suggestion_min_coverage: float = Field(default=0.34, ge=0, le=1)

    log_level: str = "INFO"

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return frozenset(int(v) for v in value.replace(" ", "").split(",") if v)
            except ValueError as exc:
                msg = "ADMIN_USER_IDS must be comma-separated Telegram user ids"
                raise ValueError(msg) from exc
        return value

    @field_validator("analyzer")
    @classmethod
    def _known_analyzer(cls, value: str) -> str:
        if value not in ("kiwi", "mecab", "whitespace"):
            raise ValueError("ANALYZER must be kiwi, mecab or whitespace")
        return value

    def answering_rules(self) -> AnsweringRules:
        return AnsweringRules(suggestion_min_coverage=self.suggestion_min_coverage)

    def token(self) -> str:
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set; see .env.example")
        return self.telegram_bot_token.get_secret_value()
