"""Text formatting the way the Telegram Bot API applies it.

One module over 400 lines on purpose: the HTML and MarkdownV2 parsers follow tdlib's one file.

The parsers below follow tdlib's ``td/telegram/MessageEntity.cpp`` (which the Bot API server
uses): same tag set, same attribute grammar, same error texts ("Unsupported start tag ...",
"Unmatched end tag ...", "Character '.' is reserved ..."), byte offsets counted in UTF-8 and
entity offsets/lengths counted in UTF-16 code units.

One deliberate difference, switchable: tdlib keeps a '&' that does not start a known entity
verbatim, although the Bot API documentation says every '&' must be escaped.  By default the
stand-in is strict and rejects it, so a bot that forgets ``html.escape`` fails in tests rather
than on the first user who types "Q&A <3".
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EntityParseError",
    "auto_entities",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "parse_text",
    "trim_text",
    "utf16_len",
]

Entity = dict[str, Any]
UserLookup = Callable[[int], "dict[str, Any] | None"]


class EntityParseError(ValueError):
    """Formatting could not be parsed; ``str(err)`` is the part after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for limits and entity offsets."""
    # Encoding is done in C, so this stays cheap even for 4096-character messages.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _byte_offset(src: str, index: int) -> int:
    # Telegram reports positions in bytes of the UTF-8 request text.
    return len(src[:index].encode("utf-8", "surrogatepass"))


# tdlib's is_space() also counts NUL, which it uses as the end-of-string sentinel.
_SPACES = frozenset(" \t\r\n\v\0")
_HEX = frozenset(string.hexdigits)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_NAME_TOKEN = frozenset(string.ascii_letters + string.digits + ".-")
_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "span", "tg-spoiler",
        "tg-emoji", "pre", "code", "blockquote", "tg-time",
    }
)  # fmt: skip
_SIMPLE_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "span": "spoiler", "tg-spoiler": "spoiler",
}  # fmt: skip


def _decode_html_entity(src: str, pos: int) -> tuple[str | None, int]:
    """Port of tdlib's decode_html_entity: returns (character, next position) or (None, pos)."""
    n = len(src)
    end = pos + 1
    if end < n and src[end] == "#":
        end += 1
        code = 0
        if end < n and src[end] == "x":
            end += 1
            while end < n and src[end] in _HEX:
                code = code * 16 + int(src[end], 16)
                end += 1
        else:
            while end < n and "0" <= src[end] <= "9":
                code = code * 10 + ord(src[end]) - 48
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None, pos
        char = chr(code)
    else:
        while end < n and src[end].isascii() and src[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(src[pos + 1 : end])
        if named is None:
            return None, pos
        char = named
    if end < n and src[end] == ";":
        end += 1
    return char, end


def _check_url(url: str) -> str | None:
    """Loose version of tdlib's check_url: scheme URLs pass, bare domains get http://."""
    url = url.strip()
    if not url or any(c.isspace() for c in url):
        return None
    if re.match(r"^(https?|ftp|tg|ton)://[^/?#\s]", url, re.IGNORECASE):
        return url
    if re.match(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?([/?#].*)?$", url):
        return "http://" + url
    return None


def _link_entity(
    url: str, offset: int, length: int, user_lookup: UserLookup | None
) -> Entity | None:
    match = re.match(r"^tg://user\?id=(\d+)$", url)
    if match and user_lookup is not None:
        user = user_lookup(int(match.group(1)))
        if user is not None:
            return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    checked = _check_url(url)
    if checked is None:
        return None  # tdlib silently drops links it cannot validate
    return {"type": "text_link", "offset": offset, "length": length, "url": checked}


@dataclass
class _OpenTag:
    tag: str
    argument: str
    u16_offset: int
    out_pos: int
    begin: int
    expandable: bool = False
    unix: str | None = None
    time_format: str | None = None


def parse_html(
    src: str, *, strict_ampersand: bool = True, user_lookup: UserLookup | None = None
) -> tuple[str, list[Entity]]:
    """Parse Bot API HTML into (plain text, entities) or raise EntityParseError."""
    n = len(src)
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    stack: list[_OpenTag] = []

    def at(k: int) -> str:
        return src[k] if k < n else "\0"

    def err(message: str) -> EntityParseError:
        return EntityParseError(message)

    i = 0
    while i < n:
        c = src[i]
        if c == "&":
            char, nxt = _decode_html_entity(src, i)
            if char is not None:
                if 0xD800 <= ord(char) <= 0xDFFF:
                    raise err(
                        "Text contains invalid Unicode characters after decoding HTML entities, "
                        "check for unmatched surrogate code units"
                    )
                out.append(char)
                u16 += _u16(char)
                i = nxt
                continue
            if strict_ampersand:
                raise err(
                    f"Character '&' at byte offset {_byte_offset(src, i)} is not part of an HTML "
                    "entity and must be escaped as &amp; (stand-in strict mode: the Bot API docs "
                    "require it, tdlib keeps it verbatim)"
                )
        if c != "<":
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != "/":
            # Start tag: the name runs to the first space or '>'.
            while at(i) not in _SPACES and at(i) != ">":
                i += 1
            if i >= n:
                raise err(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
            tag = src[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise err(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(src, begin)}'
                )
            opened = _OpenTag(tag, "", u16, len(out), begin)
            while at(i) != ">":
                while i < n and at(i) in _SPACES:
                    i += 1
                if at(i) == ">":
                    break
                attr_begin = i
                while at(i) not in _SPACES and at(i) not in "=>":
                    i += 1
                attr = src[attr_begin:i].lower()
                if not attr:
                    raise err(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{_byte_offset(src, begin)}"
                    )
                while i < n and at(i) in _SPACES:
                    i += 1
                if at(i) != "=":
                    if tag == "blockquote" and attr == "expandable":
                        opened.expandable = True
                        continue
                    raise err(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {_byte_offset(src, begin)}'
                    )
                i += 1
                while i < n and at(i) in _SPACES:
                    i += 1
                if i >= n:
                    raise err(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(src, begin)}'
                    )
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i) in _NAME_TOKEN:
                        i += 1
                    value = src[token_begin:i].lower()
                    if at(i) not in _SPACES and at(i) != ">":
                        raise err(
                            f"Unexpected end of name token at byte offset "
                            f"{_byte_offset(src, token_begin)}"
                        )
                else:
                    quote = src[i]
                    i += 1
                    parts: list[str] = []
                    while i < n and src[i] != quote:
                        if src[i] == "&":
                            char, nxt = _decode_html_entity(src, i)
                            if char is not None:
                                parts.append(char)
                                i = nxt
                                continue
                            if strict_ampersand:
                                raise err(
                                    f"Character '&' at byte offset {_byte_offset(src, i)} is not "
                                    "part of an HTML entity and must be escaped as &amp; "
                                    "(stand-in strict mode: the Bot API docs require it, tdlib "
                                    "keeps it verbatim)"
                                )
                        parts.append(src[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(parts)
                if i >= n:
                    raise err(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
                if tag == "a" and attr == "href":
                    opened.argument = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    opened.argument = value[len("language-") :]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    opened.argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr == "emoji-id":
                    opened.argument = value
                elif tag == "blockquote" and attr == "expandable":
                    opened.expandable = True
                elif tag == "tg-time" and attr == "unix":
                    opened.unix = value
                elif tag == "tg-time" and attr == "format":
                    opened.time_format = value
            if tag == "span" and opened.argument != "spoiler":
                raise err(
                    f'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(src, begin)}"
                )
            stack.append(opened)
            i += 1  # skip '>'
            continue

        # End tag.
        if not stack:
            raise err(f"Unexpected end tag at byte offset {_byte_offset(src, begin)}")
        while at(i) not in _SPACES and at(i) != ">":
            i += 1
        end_name = src[begin + 2 : i]
        while i < n and at(i) in _SPACES:
            i += 1
        if at(i) != ">":
            raise err(f"Unclosed end tag at byte offset {_byte_offset(src, begin)}")
        opened = stack.pop()
        # tdlib compares the end tag as written with the lower-cased start tag.
        if end_name and end_name != opened.tag:
            raise err(
                f"Unmatched end tag at byte offset {_byte_offset(src, begin)}, expected "
                f'"</{opened.tag}>", found "</{end_name}>"'
            )
        i += 1
        _close_html_entity(opened, u16, out, entities, user_lookup)

    if stack:
        raise err(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_html_entity(
    opened: _OpenTag,
    u16: int,
    out: list[str],
    entities: list[Entity],
    user_lookup: UserLookup | None,
) -> None:
    offset = opened.u16_offset
    length = u16 - offset
    tag = opened.tag
    # Checked even for empty content, because the identifier is what Telegram resolves.
    if tag == "tg-emoji" and (not opened.argument.isdigit() or int(opened.argument) == 0):
        raise EntityParseError("Invalid custom emoji identifier specified")
    if tag == "tg-time" and (opened.unix is None or not opened.unix.isdigit()):
        raise EntityParseError('Tag "tg-time" must have a valid "unix" attribute')
    if length <= 0:
        return  # empty entities are dropped, as tdlib does
    simple = _SIMPLE_TAGS.get(tag)
    if simple is not None:
        entities.append({"type": simple, "offset": offset, "length": length})
    elif tag == "a":
        url = opened.argument or "".join(out[opened.out_pos :])
        entity = _link_entity(url, offset, length, user_lookup)
        if entity is not None:
            entities.append(entity)
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
        ):
            # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
            language = last.pop("_language", "")
            last["type"] = "pre"
            if language:
                last["language"] = language
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == offset
            and last["length"] == length
            and opened.argument
        ):
            last["language"] = opened.argument
        else:
            entity: Entity = {"type": "code", "offset": offset, "length": length}
            if opened.argument:
                entity["_language"] = opened.argument
            entities.append(entity)
    elif tag == "blockquote":
        kind = "expandable_blockquote" if opened.expandable else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})
    elif tag == "tg-emoji":
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": opened.argument,
            }
        )
    elif tag == "tg-time":
        entity = {
            "type": "date_time",
            "offset": offset,
            "length": length,
            "unix_time": int(opened.unix or 0),
        }
        if opened.time_format:
            entity["date_time_format"] = opened.time_format
        entities.append(entity)


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"


@dataclass
class _MdOpen:
    kind: str  # tdlib type name, used verbatim in error texts
    u16_offset: int
    byte_begin: int
    out_pos: int
    language: str = ""


def parse_markdown_v2(
    src: str, *, user_lookup: UserLookup | None = None
) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2 into (plain text, entities) or raise EntityParseError."""
    n = len(src)
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    stack: list[_MdOpen] = []
    quote_start: int | None = None  # u16 offset where the current blockquote began
    quote_expandable = False

    def at(k: int) -> str:
        return src[k] if k < n else "\0"

    def reserved(ch: str) -> EntityParseError:
        return EntityParseError(
            f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
        )

    def close_quote() -> None:
        nonlocal quote_start, quote_expandable
        # The quote ends before the line break that ended its last line.
        quote_end = u16 - 1 if out and out[-1] == "\n" else u16
        if quote_start is not None and quote_end > quote_start:
            kind = "expandable_blockquote" if quote_expandable else "blockquote"
            entities.append(
                {"type": kind, "offset": quote_start, "length": quote_end - quote_start}
            )
        quote_start = None
        quote_expandable = False

    i = 0
    while i < n:
        c = src[i]
        in_code = bool(stack) and stack[-1].kind in ("Code", "Pre", "PreCode")
        line_start = i == 0 or src[i - 1] == "\n"
        if line_start and not in_code:
            if c == "*" and src.startswith("**>", i):
                # '**>' starts an expandable quote, even right after another quote.
                close_quote()
                quote_start = u16
                quote_expandable = True
                i += 3
                continue
            if c == ">":
                if quote_start is None:
                    quote_start = u16
                i += 1
                continue
            if quote_start is not None:
                close_quote()
        if c == "\\" and 0 < ord(at(i + 1)) <= 126 and i + 1 < n:
            out.append(src[i + 1])
            u16 += 1
            i += 2
            continue
        if quote_start is not None and c == "|" and src.startswith("||", i):
            # '||' closing the last line of an expandable blockquote.
            after = at(i + 2)
            if (
                quote_expandable
                and (after == "\n" or i + 2 >= n)
                and not (stack and stack[-1].kind == "Spoiler")
            ):
                i += 2
                continue
        allowed = "`" if in_code else _MDV2_RESERVED
        if c not in allowed:
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue

        top = stack[-1].kind if stack else None
        is_end = (
            (top == "Bold" and c == "*")
            or (top == "Italic" and c == "_" and at(i + 1) != "_")
            or (top == "Code" and c == "`")
            or (top in ("Pre", "PreCode") and src.startswith("```", i))
            or (top in ("TextUrl", "CustomEmoji") and c == "]")
            or (top == "Underline" and src.startswith("__", i))
            or (top == "Strikethrough" and c == "~")
            or (top == "Spoiler" and src.startswith("||", i))
        )
        if not is_end:
            byte_begin = _byte_offset(src, i)
            language = ""
            if c == "_":
                if at(i + 1) == "_":
                    kind = "Underline"
                    i += 1
                else:
                    kind = "Italic"
            elif c == "*":
                kind = "Bold"
            elif c == "~":
                kind = "Strikethrough"
            elif c == "|":
                if at(i + 1) != "|":
                    raise reserved(c)
                kind = "Spoiler"
                i += 1
            elif c == "[":
                kind = "TextUrl"
            elif c == "!" and at(i + 1) == "[":
                kind = "CustomEmoji"
                i += 1
            elif c == "`":
                if src.startswith("```", i):
                    i += 3
                    kind = "Pre"
                    lang_end = i
                    while at(lang_end) not in _SPACES and at(lang_end) != "`":
                        lang_end += 1
                    if i != lang_end and lang_end < n and at(lang_end) != "`":
                        kind = "PreCode"
                        language = src[i:lang_end]
                        i = lang_end
                    # One line break right after the opening fence is not part of the code.
                    if at(i) in "\r\n" and i < n:
                        i += 2 if at(i + 1) in "\r\n" and at(i + 1) != at(i) else 1
                    i -= 1
                else:
                    kind = "Code"
            else:
                raise reserved(c)
            stack.append(_MdOpen(kind, u16, byte_begin, len(out), language))
            i += 1
            continue

        opened = stack.pop()
        skip = u16 == opened.u16_offset
        extra: Entity = {}
        etype = ""
        if opened.kind in ("Underline", "Spoiler"):
            i += 1
        elif opened.kind in ("Pre", "PreCode"):
            i += 2
        if opened.kind == "TextUrl":
            if at(i + 1) != "(":
                url = "".join(out[opened.out_pos :])
            else:
                i += 2
                url_begin = i
                parts: list[str] = []
                while i < n and src[i] != ")":
                    if src[i] == "\\" and 0 < ord(at(i + 1)) <= 126 and i + 1 < n:
                        parts.append(src[i + 1])
                        i += 2
                        continue
                    parts.append(src[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(src, url_begin)}"
                    )
                url = "".join(parts)
            link = _link_entity(url, opened.u16_offset, u16 - opened.u16_offset, user_lookup)
            if link is None:
                skip = True
            else:
                etype = link.pop("type")
                link.pop("offset")
                link.pop("length")
                extra = link
        elif opened.kind == "CustomEmoji":
            if at(i + 1) != "(":
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            i += 2
            url_begin = i
            while i < n and src[i] != ")":
                i += 1
            if i >= n:
                raise EntityParseError(
                    "Can't find end of a custom emoji URL at byte offset "
                    f"{_byte_offset(src, url_begin)}"
                )
            match = re.match(r"^tg://emoji\?id=(\d+)$", src[url_begin:i])
            if not match:
                raise EntityParseError("Invalid custom emoji identifier specified")
            etype = "custom_emoji"
            extra = {"custom_emoji_id": match.group(1)}
        else:
            etype = {
                "Bold": "bold", "Italic": "italic", "Underline": "underline",
                "Strikethrough": "strikethrough", "Spoiler": "spoiler", "Code": "code",
                "Pre": "pre", "PreCode": "pre",
            }[opened.kind]  # fmt: skip
            if opened.kind == "PreCode":
                extra = {"language": opened.language}
        if not skip:
            entities.append(
                {"type": etype, "offset": opened.u16_offset, "length": u16 - opened.u16_offset}
                | extra
            )
        i += 1

    if stack:
        opened = stack[-1]
        raise EntityParseError(
            f"Can't find end of {opened.kind} entity at byte offset {opened.byte_begin}"
        )
    close_quote()
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_markdown(src: str, *, user_lookup: UserLookup | None = None) -> tuple[str, list[Entity]]:
    """Parse legacy Markdown (parse_mode "Markdown") into (plain text, entities)."""
    n = len(src)
    out: list[str] = []
    u16 = 0
    entities: list[Entity] = []

    def at(k: int) -> str:
        return src[k] if k < n else "\0"

    i = 0
    while i < n:
        c = src[i]
        if c == "\\" and at(i + 1) in "_*`[" and i + 1 < n:
            out.append(src[i + 1])
            u16 += 1
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = False
        language = ""
        i += 1
        if c == "`" and src.startswith("``", i):
            i += 2
            is_pre = True
            lang_end = i
            while at(lang_end) not in _SPACES and at(lang_end) != "`":
                lang_end += 1
            if i != lang_end and lang_end < n and at(lang_end) != "`":
                language = src[i:lang_end]
                i = lang_end
            if at(i) in "\r\n" and i < n:
                i += 2 if at(i + 1) in "\r\n" and at(i + 1) != at(i) else 1
        start_u16 = u16
        start_out = len(out)
        while i < n and (src[i] != end_char or (is_pre and not src.startswith("```", i))):
            out.append(src[i])
            u16 += _u16(src[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(src, begin)}"
            )
        length = u16 - start_u16
        if c == "[":
            if at(i + 1) == "(":
                i += 2
                url_chars: list[str] = []
                while i < n and src[i] != ")":
                    url_chars.append(src[i])
                    i += 1
                url = "".join(url_chars)
            else:
                url = "".join(out[start_out:])
            if length > 0:
                link = _link_entity(url, start_u16, length, user_lookup)
                if link is not None:
                    entities.append(link)
        elif length > 0:
            if c == "_":
                entities.append({"type": "italic", "offset": start_u16, "length": length})
            elif c == "*":
                entities.append({"type": "bold", "offset": start_u16, "length": length})
            elif is_pre:
                entity: Entity = {"type": "pre", "offset": start_u16, "length": length}
                if language:
                    entity["language"] = language
                entities.append(entity)
            else:
                entities.append({"type": "code", "offset": start_u16, "length": length})
        i += 3 if is_pre else 1
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_TRIM = " \t\r\n\v"


def trim_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip surrounding whitespace as Telegram does and clip entities to the kept text."""
    stripped = text.strip(_TRIM)
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip(_TRIM))])
    total = utf16_len(stripped)
    clipped: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            clipped.append(entity | {"offset": start, "length": end - start})
    return stripped, clipped


def parse_text(
    src: str,
    parse_mode: str | None,
    *,
    strict_ampersand: bool = True,
    user_lookup: UserLookup | None = None,
) -> tuple[str, list[Entity]]:
    """Apply a Bot API parse_mode (case-insensitive; None or "" means plain text).

    Raises EntityParseError for markup errors and ValueError("unsupported parse_mode").
    """
    mode = (parse_mode or "").lower()
    if mode == "":
        return src, []
    if mode == "html":
        text, entities = parse_html(src, strict_ampersand=strict_ampersand, user_lookup=user_lookup)
    elif mode == "markdownv2":
        text, entities = parse_markdown_v2(src, user_lookup=user_lookup)
    elif mode == "markdown":
        text, entities = parse_markdown(src, user_lookup=user_lookup)
    else:
        raise ValueError("unsupported parse_mode")
    for entity in entities:
        entity.pop("_language", None)
    return text, entities


# Entities Telegram detects by itself in messages users send.
_AUTO_PATTERNS = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")),
    ("url", re.compile(r"(?<![\w@])https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'\"]")),
)


def auto_entities(text: str) -> list[Entity]:
    """bot_command, mention, hashtag and url entities with UTF-16 offsets."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            found.append((match.start(), match.end(), kind))
    if not found:
        return []
    found.sort()
    wide = any(ord(ch) > 0xFFFF for ch in text)
    result: list[Entity] = []
    taken_until = -1
    for start, end, kind in found:
        if start < taken_until:
            continue  # overlapping matches: the earliest wins, as entities cannot overlap
        taken_until = end
        if wide:
            offset, length = utf16_len(text[:start]), utf16_len(text[start:end])
        else:
            offset, length = start, end - start
        result.append({"type": kind, "offset": offset, "length": length})
    return result
