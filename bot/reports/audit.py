"""`maxbot audit`: every admin and secretariat action, refused attempts included, in Korean
time with Korean labels (bot/templates/<language>/audit.html.j2), or as JSON lines."""

from __future__ import annotations

import datetime as dt
import json
import sys
import unicodedata
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.replies import render, to_plain_text
from bot.reports.period import database_error, day_start, kst
from bot.settings import Settings
from bot.storage.database import Database, with_database
from bot.storage.models import AdminAction
from bot.storage.records import admin_actions


def list_actions(settings: Settings, since: dt.date | None = None, as_json: bool = False,
                 out: TextIO | None = None) -> int:
    out = out or sys.stdout

    async def work(database: Database) -> list[AdminAction]:
        async with database.session() as session:
            return await admin_actions(session, day_start(since) if since else None)

    try:
        actions = with_database(settings.database_url, settings.spool_path, work)
    except (SQLAlchemyError, OSError) as exc:
        return database_error(settings, exc)
    if as_json:
        for action in actions:
            print(json.dumps({"at": action.at.isoformat(), "person_id": action.person_id,
                              "action": action.action, "allowed": action.allowed,
                              "detail": action.detail}, ensure_ascii=False), file=out)
        return 0
    shown = [{"at": f"{kst(action.at):%Y-%m-%d %H:%M:%S}", "allowed": action.allowed,
              "person_id": action.person_id, **_named(action.action),
              "detail": _terminal_lines(action.detail)} for action in actions]
    print(to_plain_text(render("audit", actions=shown)), file=out)
    return 0


def _named(action: str) -> dict[str, object]:
    """`button:sc:12` (a press on follow-up 12's close button) as its name and follow-up."""
    name, _, followup_id = action.rpartition(":")
    if name.startswith("button:") and followup_id.isdigit():
        return {"name": name, "followup_id": int(followup_id)}
    return {"name": action, "followup_id": None}


def _terminal_lines(text: str) -> list[str]:
    """Every line of a text someone typed, without control characters: an escape sequence in
    it must not reach the admin's terminal."""
    return [" ".join("".join(" " if unicodedata.category(c).startswith("C") else c
                             for c in line).split())
            for line in text.splitlines() if line.strip()]
