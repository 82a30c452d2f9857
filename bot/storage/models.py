"""The tables: who writes, what they asked, and the secretariat's follow-ups.

Schema changes go through Alembic migrations in bot/storage/migrations/, applied at start.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# --- statuses ---------------------------------------------------------------------------------
# Stored as their words (VARCHAR columns, as the migrations made them): an enum here changes
# what the code may write, not what the database holds.


class QuestionStatus(StrEnum):
    """What became of a question. The first four are the decisions of bot.answering."""

    ANSWERED = "answered"
    UNANSWERED = "unanswered"
    OFF_TOPIC = "off_topic"
    SMALLTALK = "smalltalk"
    TOO_LONG = "too_long"  # refused unread: over the length limit
    LIMITED = "limited"  # refused unread: over the user's questions per minute
    DIRECT = "direct"  # typed for the secretariat after "ask the secretariat"
    CONSULTATION = "consultation"  # a consultation request from the eligibility check


class FollowUpStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class FollowUpReason(StrEnum):
    """Why a follow-up was opened."""

    UNANSWERED = "unanswered"  # the bot could not answer
    FEEDBACK = "feedback"  # the asker pressed 👎 and asked the secretariat
    CONSULTATION = "consultation"  # the eligibility check's consultation request
    DIRECT = "direct"  # the asker asked the secretariat on purpose


class EventKind(StrEnum):
    """What happened to a follow-up."""

    POSTED = "posted"  # its post reached the secretariat group
    ANSWER = "answer"  # the first answer, sent to the asker
    ADDITION = "addition"  # a later answer
    DELIVERED = "delivered"  # the group was told the answer reached the asker
    EDITED = "edited"  # an answer edited in the group, the asker's copy edited too
    DELIVERY_FAILED = "delivery_failed"
    CLOSED = "closed"  # closed without an answer
    GAP = "gap"  # marked as a gap of the knowledge base
    PROPOSAL = "proposal"  # an FAQ proposal written from it
    CONSULTATION = "consultation"  # the details of a consultation request


class InboxState(StrEnum):
    """Where an update of the inbox is (bot/delivery/inbox.py), in this order."""

    RECEIVED = "received"
    REPLYING = "replying"
    REPLIED = "replied"
    DONE = "done"


class SuggestionStatus(StrEnum):
    """Where a suggested wording is (bot/learning.py): an admin decides it once."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class SignalKind(StrEnum):
    """What made a question suggest a wording (bot/learning.py)."""

    PRESSED = "pressed"  # declined, then the asker pressed that entry's button
    LIKED = "liked"  # answered and rated 👍
    REPHRASED = "rephrased"  # declined, then asked again in other words and answered


class StatusType(TypeDecorator[StrEnum]):
    """A status column: written only as one of its enum's words, read back as the enum.

    A word the enum does not know (written by a newer version of the bot) is read as it is.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        try:
            return None if value is None else self.enum(value)
        except ValueError:
            return value


def _status(enum: type[StrEnum], **kwargs: Any) -> Any:
    return Field(sa_type=StatusType(enum), **kwargs)


# --- moments ----------------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A moment, stored in UTC and read back aware, in UTC.

    SQLite keeps no time zone: it stores the UTC wall time and hands it back naive, which is
    read here as UTC; PostgreSQL's timestamptz keeps the moment. An aware moment in another
    zone is turned to UTC first (SQLite would otherwise keep its local wall time).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect
                           ) -> dt.datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect
                             ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _when(**kwargs: object) -> object:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


# --- tables -----------------------------------------------------------------------------------


class Person(SQLModel, table=True):
    """Someone who wrote to the bot, by Telegram user id."""

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    first_seen: dt.datetime = _when(nullable=False)
    last_seen: dt.datetime = _when(nullable=False)


class Question(SQLModel, table=True):
    """Every question, with what the bot made of it. A redelivered update is stored once."""

    __table_args__ = (UniqueConstraint("chat_id", "message_id", name="uq_question_message"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    message_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    status: QuestionStatus = _status(QuestionStatus, index=True)
    entry_id: str | None = None
    score: float | None = None
    coverage: float | None = None
    knowledge_version: str = ""
    # +1 for 👍, -1 for 👎, None until the user says.
    feedback: int | None = None
    # Why a 👎 answer missed (bot.handlers.feedback.REASONS), None until the user says.
    feedback_reason: str | None = None
    asked_at: dt.datetime = _when(nullable=False, index=True)
    # Set when the reply could not be sent within its retry window; /pending lists these.
    reply_error: str | None = Field(default=None, sa_column=Column(Text))
    reply_failed_at: dt.datetime | None = _when(nullable=True, index=True)


class FollowUp(SQLModel, table=True):
    """A question the secretariat answers: open until answered or closed."""

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id", unique=True)
    status: FollowUpStatus = _status(FollowUpStatus, default=FollowUpStatus.OPEN, index=True)
    reason: FollowUpReason = _status(FollowUpReason, default=FollowUpReason.UNANSWERED)
    answer: str | None = Field(default=None, sa_column=Column(Text))
    answered_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    answered_at: dt.datetime | None = _when(nullable=True)
    created_at: dt.datetime = _when(nullable=False, index=True)
    # The post in the secretariat group that a member replies to.
    group_message_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    # Marked by the secretariat: the knowledge base should answer this kind of question.
    kb_gap: bool = False
    closed_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    closed_at: dt.datetime | None = _when(nullable=True)
    # Posting to the group is a job (bot/delivery/posting.py): until group_message_id is set, the
    # follow-up is tried again after post_after (a claim while one process posts it, then a
    # backoff after each failure).
    post_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False,
                                                           server_default="0"))
    post_error: str | None = Field(default=None, sa_column=Column(Text))
    post_after: dt.datetime | None = _when(nullable=True)


class FollowUpEvent(SQLModel, table=True):
    """The history of a follow-up: posted, answered, added to, closed, delivery failed ..."""

    __tablename__ = "followup_event"

    id: int | None = Field(default=None, primary_key=True)
    followup_id: int = Field(foreign_key="followup.id", index=True)
    kind: EventKind = _status(EventKind)
    author_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    text: str | None = Field(default=None, sa_column=Column(Text))
    # The bot's message in the secretariat group about this event; replies to it count too.
    group_message_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    at: dt.datetime = _when(nullable=False)


class AdminAction(SQLModel, table=True):
    """Who did what, when: admin and secretariat actions, refused attempts included."""

    __tablename__ = "admin_action"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    action: str = Field(index=True)
    detail: str = Field(default="", sa_column=Column(Text))
    allowed: bool = True
    at: dt.datetime = _when(nullable=False, index=True)


class KnowledgeState(SQLModel, table=True):
    """The knowledge version admins activated last; every bot process converges on it."""

    __tablename__ = "knowledge_state"

    id: int = Field(default=1, primary_key=True)
    version: str
    # JSON: entry id -> fingerprint of its content, to tell what the next version changes.
    fingerprints: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    updated_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_at: dt.datetime = _when(nullable=False)


class BotState(SQLModel, table=True):
    """python-telegram-bot's persisted data as JSON: the states of persistent conversations
    (the eligibility check), user_data and chat_data. Written by bot/storage/persistence.py."""

    __tablename__ = "bot_state"

    # "user" | "chat" | "conversation:<name>"
    kind: str = Field(primary_key=True)
    # The user or chat id, or the conversation key as a JSON list.
    key: str = Field(primary_key=True)
    data: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: dt.datetime = _when(nullable=False)


class InboxUpdate(SQLModel, table=True):
    """An update from Telegram, noted before Telegram counts it delivered (bot/delivery/inbox.py).

    `state` goes received -> replying (the first message for it is being sent) -> replied
    (Telegram has it) -> done. The `owner` is the bot process handling it; when that process
    dies, another takes it over.
    """

    __tablename__ = "inbox"

    # Update ids count per bot: two bots may share a database.
    bot_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # The update as Telegram sent it (JSON), to handle it again after a crash.
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: InboxState = _status(InboxState, default=InboxState.RECEIVED, index=True)
    owner: str = Field(index=True)
    # Who sent it: another process waits for a user's earlier update before the next one.
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    received_at: dt.datetime = _when(nullable=False)
    finished_at: dt.datetime | None = _when(nullable=True)


class SentOnce(SQLModel, table=True):
    """Something people see, sent at most once by what caused it: a button press (its
    callback id) or a secretariat reply (its message in the group), with the message it
    became, so that an edit of the reply can edit that message instead of sending again."""

    __tablename__ = "sent_once"

    key: str = Field(primary_key=True)
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    at: dt.datetime = _when(nullable=False)
    # The update whose handler claimed it: the same update handled again after a crash
    # carries on from the claim (bot/delivery/once.py); any other update leaves it.
    update_id: int | None = Field(default=None, sa_column=Column(BigInteger))


class Suggestion(SQLModel, table=True):
    """A wording users asked that an FAQ entry answers but does not list (bot/learning.py):
    near-identical wordings share one row (`key`), which an admin accepts or rejects once."""

    __table_args__ = (UniqueConstraint("entry_id", "key", name="uq_suggestion_wording"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(index=True)
    # The wording with case, spaces and punctuation taken out: what "near-identical" means.
    key: str = Field(sa_column=Column(Text, nullable=False))
    # The wording as first asked; accepting writes it as an alternate of the entry.
    wording: str = Field(sa_column=Column(Text, nullable=False))
    # A rejected wording is never proposed again.
    status: SuggestionStatus = _status(SuggestionStatus, default=SuggestionStatus.PROPOSED,
                                       index=True)
    decided_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    decided_at: dt.datetime | None = _when(nullable=True)
    created_at: dt.datetime = _when(nullable=False)


class SuggestionSignal(SQLModel, table=True):
    """One question that suggests a wording: declined, then the asker pressed that entry's
    button (pressed); answered and rated 👍 (liked); declined, then asked again in other
    words and answered (rephrased). A question counts once per suggestion."""

    __tablename__ = "suggestion_signal"
    __table_args__ = (UniqueConstraint("suggestion_id", "question_id",
                                       name="uq_suggestion_signal_question"),)

    id: int | None = Field(default=None, primary_key=True)
    suggestion_id: int = Field(foreign_key="suggestion.id", index=True)
    question_id: int = Field(foreign_key="question.id")
    person_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: SignalKind = _status(SignalKind)
    at: dt.datetime = _when(nullable=False)
