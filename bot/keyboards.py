"""Buttons: the one codec of their callback data, and the builders of the keyboards they sit in.

Callback data is `<kind>:<field>:<field>…` (Telegram allows 64 bytes). `pack` writes it,
`unpack` reads it back as a `Press`, and `pattern` gives the handler's regular expression for a
kind, so that no handler splits strings of its own. The labels are rendered by the callers
from templates; nothing here is text a person reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

SEPARATOR = ":"
DATA_BYTES = 64  # Telegram's limit on callback data
BUTTON_TEXT_CHARS = 40  # longer labels are cut: a button shows about this much on a phone

# Our row ids are 32-bit integers in PostgreSQL; a larger number names no row and would
# overflow the driver.
ROW_ID_MAX = 2**31 - 1

# What each kind of field looks like in a handler's pattern.
NUMBER = r"\d+"
KEY = r"[a-z0-9_-]+"
WORD = r"[^:]+"


def parse_id(text: str) -> int | None:
    """A row id typed or carried in a button (`12`, `#12`), or None when it cannot be one."""
    digits = text.strip().lstrip("#")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        return None
    value = int(digits)
    return value if 0 < value <= ROW_ID_MAX else None


@dataclass(frozen=True)
class Press:
    """The callback data of a pressed button, read back: its kind and its fields."""

    kind: str
    fields: tuple[str, ...]

    def field(self, n: int) -> str:
        """The n-th field, or "" when the data has fewer (old or forged buttons)."""
        return self.fields[n] if n < len(self.fields) else ""

    def id(self, n: int = 0) -> int | None:
        """The n-th field as a row id, or None when it cannot be one."""
        return parse_id(self.field(n))


def pack(kind: str, *fields: object) -> str:
    """The callback data of a button of `kind` carrying `fields`."""
    texts = [str(f) for f in fields]
    if any(SEPARATOR in t for t in (kind, *texts)):
        raise ValueError(f"callback data fields may not hold {SEPARATOR!r}: {kind} {texts}")
    data = SEPARATOR.join([kind, *texts])
    if len(data.encode()) > DATA_BYTES:
        raise ValueError(f"callback data over {DATA_BYTES} bytes: {data}")
    return data


def fits(kind: str, *fields: object) -> bool:
    """Whether a button of `kind` can carry `fields` (an optional field that does not fit is
    left out by the caller)."""
    try:
        pack(kind, *fields)
    except ValueError:
        return False
    return True


def unpack(data: object) -> Press:
    """A button's callback data as a Press (kind "" for data that is not ours)."""
    if not isinstance(data, str) or not data:
        return Press("", ())
    kind, *fields = data.split(SEPARATOR)
    return Press(kind, tuple(fields))


def pattern(kind: str, *fields: str) -> str:
    """The regular expression a handler of `kind` matches, fields given as NUMBER, KEY, …
    (the kind itself may be a pattern: "s[cg]")."""
    return "^" + SEPARATOR.join([kind, *fields]) + "$"


def button(label: str, kind: str, *fields: object) -> InlineKeyboardButton:
    """A button with `label` (cut to BUTTON_TEXT_CHARS) that sends `kind` and its fields."""
    text = label if len(label) <= BUTTON_TEXT_CHARS else label[: BUTTON_TEXT_CHARS - 1] + "…"
    return InlineKeyboardButton(text, callback_data=pack(kind, *fields))


def link(label: str, url: str) -> InlineKeyboardButton:
    """A button that opens a web page."""
    text = label if len(label) <= BUTTON_TEXT_CHARS else label[: BUTTON_TEXT_CHARS - 1] + "…"
    return InlineKeyboardButton(text, url=url)


def in_rows(buttons: Sequence[InlineKeyboardButton], per_row: int = 2
            ) -> list[list[InlineKeyboardButton]]:
    """Buttons laid out `per_row` to a row (two: short labels side by side on a phone)."""
    return [list(buttons[i:i + per_row]) for i in range(0, len(buttons), per_row)]


def keyboard(rows: Iterable[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    """The keyboard of the non-empty rows, or None when there is no button at all."""
    kept = [list(row) for row in rows if row]
    return InlineKeyboardMarkup(kept) if kept else None


def without(markup: InlineKeyboardMarkup | None, *kinds: str, fields: Sequence[object] = ()
            ) -> InlineKeyboardMarkup | None:
    """The keyboard without the buttons of `kinds` (none given: without any button); with
    `fields`, only those of them whose fields begin so (one suggestion's buttons of many)."""
    first = tuple(str(f) for f in fields)

    def dropped(pressable: InlineKeyboardButton) -> bool:
        press = unpack(pressable.callback_data)
        return not kinds or (press.kind in kinds and press.fields[:len(first)] == first)

    rows = [[b for b in row if not dropped(b)]
            for row in (markup.inline_keyboard if markup else ())]
    return keyboard(rows)
