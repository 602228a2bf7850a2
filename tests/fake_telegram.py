"""A local fake of the Telegram Bot API for end-to-end tests.

`FakeBotAPI` is an aiohttp server on 127.0.0.1 that answers like api.telegram.org: the
same URL layout (``{base}/bot{token}/{method}``, files at ``{base}/file/bot{token}/{path}``),
the same ``{"ok": ..., "result": ...}`` envelope and the same error shapes, so an aiogram
``Bot`` pointed at it with ``TelegramAPIServer.from_base(fake.base_url)`` works unchanged.

Every call is checked against the published Bot API spec (``shared/telegram``) and against
Telegram's limits (text length, HTML markup, callback data, inline results, commands);
the server keeps chats, messages, files and pending updates like Telegram does and records
every call so tests can assert on what the bot did.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import mimetypes
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Self

from aiohttp import web

SPEC_PATH = Path(__file__).parents[2] / "shared" / "telegram" / "bot-api-10.1.json"
DEFAULT_TOKEN = "123456:TEST-TOKEN"

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
INLINE_RESULTS_LIMIT = 50
COMMANDS_LIMIT = 100

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer of the Bot API: its HTTP status equals ``error_code``."""

    def __init__(
        self, error_code: int, description: str, parameters: JsonDict | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> JsonDict:
        """The JSON body Telegram sends for this error."""
        body: JsonDict = {"ok": False, "error_code": self.error_code}
        body["description"] = self.description
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    """A 400 error with Telegram's ``Bad Request: ...`` description."""
    return ApiError(400, f"Bad Request: {reason}")


# --------------------------------------------------------------------------- text helpers


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    return len(text.encode("utf-16-le")) // 2


class EntityParseError(Exception):
    """Raised by `parse_html` for markup Telegram refuses."""


_HTML_ENTITY = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_END_TAG = re.compile(r"</([a-zA-Z0-9-]*)\s*>")
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]+")
_ATTR_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_ALLOWED_TAGS = {*_SIMPLE_TAGS, "span", "a", "tg-emoji", "blockquote"}


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset of the tag's content in the parsed text


def _decode_entity(raw: str, pos: int) -> tuple[str, int] | None:
    """Decode the HTML entity starting at ``raw[pos]`` into (character, end position)."""
    match = _HTML_ENTITY.match(raw, pos)
    if match is None:
        return None
    decimal, hexadecimal, name = match.groups()
    if name:
        return _NAMED_ENTITIES[name], match.end()
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def _byte_offset(raw: str, pos: int) -> int:
    return len(raw[:pos].encode())


def _parse_attributes(raw: str, pos: int, tag: str, tag_start: int) -> tuple[dict[str, str], int]:
    """Parse ``attr="value"`` pairs up to the closing ``>``; return them and the end position."""
    attrs: dict[str, str] = {}
    while True:
        while pos < len(raw) and raw[pos].isspace():
            pos += 1
        if pos >= len(raw):
            raise EntityParseError(
                f"Unclosed start tag at byte offset {_byte_offset(raw, tag_start)}"
            )
        if raw[pos] == ">":
            return attrs, pos + 1
        name_match = _ATTR_NAME.match(raw, pos)
        if name_match is None:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(raw, pos)}'
            )
        name = name_match.group().lower()
        pos = name_match.end()
        if raw.startswith("=", pos):
            value, pos = _parse_attribute_value(raw, pos + 1, tag)
        elif tag == "blockquote" and name == "expandable":
            value = ""
        else:
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(raw, pos)}"
            )
        attrs[name] = value


def _parse_attribute_value(raw: str, pos: int, tag: str) -> tuple[str, int]:
    quote = raw[pos : pos + 1]
    if quote in ('"', "'"):
        end = raw.find(quote, pos + 1)
        if end < 0:
            raise EntityParseError(
                f'Unclosed end of an attribute value in the tag "{tag}" '
                f"at byte offset {_byte_offset(raw, pos)}"
            )
        value_raw, after = raw[pos + 1 : end], end + 1
    else:
        match = re.compile(r"[^\s>]*").match(raw, pos)
        assert match is not None  # the pattern matches the empty string
        value_raw, after = match.group(), match.end()
    value: list[str] = []
    i = 0
    while i < len(value_raw):
        decoded = _decode_entity(value_raw, i) if value_raw[i] == "&" else None
        if decoded:
            value.append(decoded[0])
            i = decoded[1]
        else:
            value.append(value_raw[i])
            i += 1
    return "".join(value), after


def _entity_for(tag: _OpenTag, length: int, parent: _OpenTag | None) -> JsonDict | None:
    """The MessageEntity a closed tag produces, or None if it produces none."""
    entity: JsonDict = {"offset": tag.offset, "length": length}
    if tag.name == "a":
        href = tag.attrs.get("href", "")
        if not href:
            return None
        entity.update(type="text_link", url=href)
    elif tag.name == "span":
        entity["type"] = "spoiler"
    elif tag.name == "tg-emoji":
        entity.update(type="custom_emoji", custom_emoji_id=tag.attrs["emoji-id"])
    elif tag.name == "blockquote":
        entity["type"] = "expandable_blockquote" if "expandable" in tag.attrs else "blockquote"
    elif tag.name == "code" and parent is not None and parent.name == "pre":
        language = tag.attrs.get("class", "")
        if not language.startswith("language-"):
            return None
        entity.update(type="pre", language=language.removeprefix("language-"))
    else:
        entity["type"] = _SIMPLE_TAGS[tag.name]
    return entity


def parse_html(raw: str, *, strict: bool = True) -> tuple[str, list[JsonDict]]:
    """Parse Telegram-flavoured HTML into (plain text, MessageEntity list), like Telegram.

    Errors use Telegram's wording. With ``strict`` a bare ``&`` (one that does not start
    ``&lt;``/``&gt;``/``&amp;``/``&quot;``/``&#...;``) or a bare ``>`` is refused as well:
    Telegram itself keeps those literally, but a bot that relies on that is one quote away
    from breaking, so tests should catch it.
    """
    out: list[str] = []
    out_len = 0  # UTF-16 length of the text produced so far
    stack: list[_OpenTag] = []
    entities: list[JsonDict] = []
    pos = 0
    while pos < len(raw):
        char = raw[pos]
        if char == "&":
            decoded = _decode_entity(raw, pos)
            if decoded is not None:
                out.append(decoded[0])
                out_len += utf16_len(decoded[0])
                pos = decoded[1]
                continue
            if strict:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {_byte_offset(raw, pos)}: use "&amp;"'
                )
        elif char == ">" and strict:
            raise EntityParseError(
                f'Unescaped ">" at byte offset {_byte_offset(raw, pos)}: use "&gt;"'
            )
        elif char == "<" and raw.startswith("</", pos):
            pos = _close_tag(raw, pos, stack, entities, out_len)
            continue
        elif char == "<":
            pos = _open_tag(raw, pos, stack, out_len)
            continue
        out.append(char)
        out_len += utf16_len(char)
        pos += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _open_tag(raw: str, pos: int, stack: list[_OpenTag], out_len: int) -> int:
    name_match = _TAG_NAME.match(raw, pos + 1)
    name = name_match.group().lower() if name_match else ""
    if name not in _ALLOWED_TAGS:
        raise EntityParseError(
            f'Unsupported start tag "{name}" at byte offset {_byte_offset(raw, pos)}'
        )
    assert name_match is not None
    attrs, end = _parse_attributes(raw, name_match.end(), name, pos)
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(raw, pos)}'
        )
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise EntityParseError(
            f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {_byte_offset(raw, pos)}'
        )
    stack.append(_OpenTag(name, attrs, out_len))
    return end


def _close_tag(
    raw: str, pos: int, stack: list[_OpenTag], entities: list[JsonDict], out_len: int
) -> int:
    match = _END_TAG.match(raw, pos)
    if match is None:
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(raw, pos)}")
    name = match.group(1).lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(raw, pos)}")
    tag = stack.pop()
    if tag.name != name:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(raw, pos)}, "
            f'expected "</{tag.name}>", found "</{name}>"'
        )
    length = out_len - tag.offset
    entity = _entity_for(tag, length, stack[-1] if stack else None) if length else None
    coded_pre = {"type": "pre", "offset": tag.offset, "length": length}
    if tag.name == "pre" and entities and entities[-1].items() >= coded_pre.items():
        entity = None  # <pre><code class="language-x"> already made the pre entity
    if entity is not None:
        entities.append(entity)
    return match.end()


def _strip_text(text: str, entities: list[JsonDict]) -> tuple[str, list[JsonDict]]:
    """Trim surrounding whitespace like Telegram, moving and clipping the entities."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] - shift + entity["length"], size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


_AUTO_ENTITY = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<mention>(?<![\w@])@[A-Za-z0-9_]{5,32})"
    r"|(?P<url>https?://[^\s<>\"]+[^\s<>\".,;:!?)\]])"
)


def detect_entities(text: str) -> list[JsonDict]:
    """The entities Telegram adds to a user's message: bot commands, @mentions and URLs."""
    entities = []
    for match in _AUTO_ENTITY.finditer(text):
        kind = match.lastgroup
        assert kind is not None
        entities.append(
            {
                "type": kind,
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities


# --------------------------------------------------------------------------- spec checking


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class _Field:
    name: str
    types: tuple[str, ...]
    required: bool
    description: str


class _Mismatch(Exception):
    """A value that does not fit a declared type; ``depth`` is how far inside it failed."""

    def __init__(self, message: str, depth: int) -> None:
        super().__init__(message)
        self.message = message
        self.depth = depth


_INTEGER = re.compile(r"-?\d+")
_MUST_BE = re.compile(r"must be (\w+)")


class ApiSpec:
    """The Bot API methods and types, as scraped from core.telegram.org."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.methods: dict[str, tuple[str, dict[str, _Field]]] = {
            name.lower(): (name, self._fields(method)) for name, method in data["methods"].items()
        }
        self.types: dict[str, Mapping[str, Any]] = dict(data["types"])
        self._type_fields = {name: self._fields(type_) for name, type_ in self.types.items()}

    @staticmethod
    def _fields(entry: Mapping[str, Any]) -> dict[str, _Field]:
        return {
            f["name"]: _Field(f["name"], tuple(f["types"]), f["required"], f.get("description", ""))
            for f in entry.get("fields", [])
        }

    @classmethod
    @cache
    def load(cls, path: Path = SPEC_PATH) -> ApiSpec:
        """Load and cache the spec file."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def method(self, name: str) -> tuple[str, dict[str, _Field]] | None:
        """(canonical name, fields) of a method; names are case-insensitive like Telegram's."""
        return self.methods.get(name.lower())

    def check_params(self, fields: Mapping[str, _Field], params: Mapping[str, Any]) -> JsonDict:
        """Decode form-encoded values to their declared types and check the method's fields.

        Returns the decoded parameters; raises a 400 `ApiError` for a missing required field
        or a value of the wrong type (object types are checked recursively).
        """
        decoded = dict(params)
        for spec_field in fields.values():
            if spec_field.name not in params:
                if spec_field.required:
                    raise bad_request(_missing_parameter(spec_field.name))
                continue
            try:
                decoded[spec_field.name] = self._coerce(
                    params[spec_field.name], spec_field.types, spec_field.name, 0
                )
            except _Mismatch as error:
                raise bad_request(error.message) from None
        return decoded

    def _coerce(self, value: Any, types: tuple[str, ...], path: str, depth: int) -> Any:
        failures: list[_Mismatch] = []
        for type_name in types:
            try:
                return self._coerce_one(value, type_name, path, depth)
            except _Mismatch as failure:
                failures.append(failure)
        deepest = max(failure.depth for failure in failures)
        candidates = [failure for failure in failures if failure.depth == deepest]
        if len(candidates) == 1 and deepest > depth:
            raise candidates[0]
        if len({failure.message for failure in failures}) == 1:
            raise failures[0]  # e.g. the same "can't parse JSON" for every candidate type
        raise _Mismatch(f'field "{path}" must be of type {" or ".join(types)}', depth)

    def _coerce_one(self, value: Any, type_name: str, path: str, depth: int) -> Any:
        mismatch = _Mismatch(f'field "{path}" must be of type {type_name}', depth)
        if type_name == "Integer":
            if isinstance(value, str) and _INTEGER.fullmatch(value):
                return int(value)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise mismatch
        if type_name == "Float":
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    raise mismatch from None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            raise mismatch
        if type_name == "Boolean":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if isinstance(value, bool):
                return value
            raise mismatch
        if type_name == "String":
            if isinstance(value, str):
                return value
            raise mismatch
        if type_name == "InputFile":
            if isinstance(value, UploadedFile):
                return value
            raise mismatch
        if type_name.startswith("Array of "):
            items = self._json_value(value, list, path, depth)
            item_type = (type_name.removeprefix("Array of "),)
            return [
                self._coerce(item, item_type, f"{path}[{index}]", depth + 1)
                for index, item in enumerate(items)
            ]
        if type_name not in self.types:
            return value
        return self._coerce_object(
            self._json_value(value, dict, path, depth), type_name, path, depth
        )

    @staticmethod
    def _json_value(value: Any, kind: type, path: str, depth: int) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _Mismatch(f"can't parse {path} JSON object", depth) from None
        if not isinstance(value, kind):
            noun = "an array" if kind is list else "an object"
            raise _Mismatch(f'field "{path}" must be {noun}', depth)
        return value

    def _coerce_object(self, value: JsonDict, type_name: str, path: str, depth: int) -> JsonDict:
        subtypes: list[str] = list(self.types[type_name].get("subtypes", []))
        if subtypes:
            if "type" in value:
                subtypes = [name for name in subtypes if self._type_tag(name) == value["type"]]
                if not subtypes:
                    raise _Mismatch(
                        f'unsupported {type_name} type "{value["type"]}" in "{path}"', depth + 1
                    )
            return self._coerce(value, tuple(subtypes), path, depth)
        decoded = dict(value)
        for spec_field in self._type_fields[type_name].values():
            inner_path = f"{path}.{spec_field.name}"
            if spec_field.name not in value:
                if spec_field.required:
                    raise _Mismatch(f'field "{inner_path}" is required', depth + 1)
                continue
            decoded[spec_field.name] = self._coerce(
                value[spec_field.name], spec_field.types, inner_path, depth + 1
            )
        return decoded

    def _type_tag(self, type_name: str) -> str | None:
        """The fixed value of a subtype's ``type`` field ("must be article")."""
        type_field = self._type_fields[type_name].get("type")
        match = _MUST_BE.search(type_field.description) if type_field else None
        return match.group(1) if match else None


def _missing_parameter(name: str) -> str:
    special = {"text": "message text is empty", "chat_id": "chat_id is empty"}
    return special.get(name, f'parameter "{name}" is required')


# --------------------------------------------------------------------------- chats and messages


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user (or bot) as it appears in updates."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    language_code: str | None = "en"

    def to_dict(self) -> JsonDict:
        """The User object."""
        data: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FakeUser:
        """Build from a User object."""
        return cls(
            id=data["id"],
            first_name=data["first_name"],
            username=data.get("username"),
            last_name=data.get("last_name"),
            is_bot=data.get("is_bot", False),
            language_code=data.get("language_code"),
        )


@dataclass(frozen=True)
class FakeChat:
    """A chat; build one with `private`, `group` or `supergroup`."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool = False

    @classmethod
    def private(cls, user: FakeUser) -> FakeChat:
        """The private chat between ``user`` and the bot."""
        return cls(
            id=user.id,
            type="private",
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
        )

    @classmethod
    def group(cls, id: int = -4000000001, title: str = "Test group") -> FakeChat:
        """A basic group (negative id)."""
        return cls(id=id, type="group", title=title)

    @classmethod
    def supergroup(
        cls,
        id: int = -1001000000001,
        title: str = "Test supergroup",
        *,
        is_forum: bool = False,
        username: str | None = None,
    ) -> FakeChat:
        """A supergroup (id -100...), optionally a forum with topics."""
        return cls(id=id, type="supergroup", title=title, username=username, is_forum=is_forum)

    def to_dict(self) -> JsonDict:
        """The Chat object."""
        data: JsonDict = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.is_forum:
            data["is_forum"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FakeChat:
        """Build from a Chat object."""
        return cls(
            id=data["id"],
            type=data["type"],
            title=data.get("title"),
            username=data.get("username"),
            first_name=data.get("first_name"),
            last_name=data.get("last_name"),
            is_forum=data.get("is_forum", False),
        )


@dataclass
class FakeMessage:
    """A message as the fake server holds it: its current state, after any edits.

    ``text`` is the plain text (or a document's caption) after entity parsing; ``html`` is
    the text exactly as sent, markup included.
    """

    message_id: int
    chat: FakeChat
    sender: FakeUser
    date: int
    text: str = ""
    html: str = ""
    parse_mode: str | None = None
    entities: list[JsonDict] = field(default_factory=list)
    reply_markup: JsonDict | None = None
    thread_id: int | None = None
    reply_to: FakeMessage | None = None
    document: JsonDict | None = None
    edit_date: int | None = None

    @property
    def chat_id(self) -> int:
        """The chat's id."""
        return self.chat.id

    @property
    def inline_buttons(self) -> list[list[JsonDict]]:
        """The InlineKeyboardButton objects, row by row."""
        if not self.reply_markup:
            return []
        return [list(row) for row in self.reply_markup.get("inline_keyboard", [])]

    @property
    def buttons(self) -> list[list[str]]:
        """The inline keyboard's button texts, row by row."""
        return [[button["text"] for button in row] for row in self.inline_buttons]

    def to_dict(self, *, with_reply: bool = True) -> JsonDict:
        """The Message object Telegram would return or deliver."""
        data: JsonDict = {
            "message_id": self.message_id,
            "from": self.sender.to_dict(),
            "chat": self.chat.to_dict(),
            "date": self.date,
        }
        if self.thread_id is not None:
            data["message_thread_id"] = self.thread_id
            if self.chat.is_forum:
                data["is_topic_message"] = True
        if with_reply and self.reply_to is not None:
            data["reply_to_message"] = self.reply_to.to_dict(with_reply=False)
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.document is not None:
            data["document"] = self.document
            if self.text:
                data["caption"] = self.text
            if self.entities:
                data["caption_entities"] = self.entities
        else:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], reply_to: FakeMessage | None) -> FakeMessage:
        """Build from a Message object of an update."""
        document = data.get("document")
        text = data.get("caption", "") if document else data.get("text", "")
        entities = data.get("caption_entities" if document else "entities", [])
        return cls(
            message_id=data["message_id"],
            chat=FakeChat.from_dict(data["chat"]),
            sender=FakeUser.from_dict(data["from"]),
            date=data["date"],
            text=text,
            html=text,
            entities=list(entities),
            thread_id=data.get("message_thread_id"),
            reply_to=reply_to,
            document=document,
            edit_date=data.get("edit_date"),
        )


@dataclass
class StoredFile:
    """A file the server knows: uploaded by the bot or registered with `add_file`."""

    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str
    content: bytes
    file_path: str

    def document(self) -> JsonDict:
        """The Document object."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.content),
        }


@dataclass
class _ChatState:
    chat: FakeChat
    messages: dict[int, FakeMessage] = field(default_factory=dict)
    last_message_id: int = 0
    member_status: dict[int, str] = field(default_factory=dict)

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id


@dataclass
class Call:
    """One Bot API request the bot made, with its decoded parameters and the outcome."""

    method: str
    params: JsonDict
    time: float
    result: Any = None
    error: JsonDict | None = None
    scripted: bool = False  # the error came from `FakeBotAPI.fail_next`

    @property
    def ok(self) -> bool:
        """Whether Telegram answered ``ok: true``."""
        return self.error is None

    def __str__(self) -> str:
        shown = {
            key: f"<file {value.filename}>" if isinstance(value, UploadedFile) else value
            for key, value in self.params.items()
        }
        outcome = "ok" if self.ok else f"-> {self.error}"
        return f"{self.method}({json.dumps(shown, ensure_ascii=False, default=str)}) {outcome}"


@dataclass
class _FailRule:
    method: str
    error: ApiError
    times: int
    chat_id: int | str | None


_DEFAULT_FAILURES = {
    403: "Forbidden: bot was blocked by the user",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_DEFAULT_ALLOWED_UPDATES = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)  # the types Telegram leaves out when allowed_updates is empty
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"

Handler = Callable[[JsonDict], Any]


# --------------------------------------------------------------------------- the server


class FakeBotAPI:
    """A fake Telegram Bot API server on 127.0.0.1 for one bot token.

    Use as ``async with FakeBotAPI() as api:`` and point aiogram at it with
    ``AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))``.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_user: FakeUser | None = None,
        strict_html: bool = True,
        max_poll_wait: float = 1.0,
        spec_path: Path = SPEC_PATH,
    ) -> None:
        self.token = token
        self.bot_user = bot_user or FakeUser(
            id=int(token.split(":")[0]),
            first_name="News Bot",
            username="newsbot_test",
            is_bot=True,
            language_code=None,
        )
        self.strict_html = strict_html
        self.max_poll_wait = max_poll_wait
        self.spec = ApiSpec.load(spec_path)

        self.calls: list[Call] = []
        self.delivered_update_ids: set[int] = set()
        self.dropped_update_ids: set[int] = set()
        self.callback_answers: dict[str, JsonDict] = {}
        self.inline_answers: dict[str, JsonDict] = {}
        self.commands: dict[tuple[str, str], list[JsonDict]] = {}
        self.webhook_url = ""
        self.allowed_updates: list[str] = []

        self._chats: dict[int, _ChatState] = {}
        self._users: dict[int, FakeUser] = {}
        self._files: dict[str, StoredFile] = {}
        self._updates: list[JsonDict] = []
        self._last_update_id = 100_000
        self._pending_callbacks: set[str] = set()
        self._pending_inline: set[str] = set()
        self._last_query_id = 0
        self._failures: list[_FailRule] = []
        self._poll_generation = 0
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "answerInlineQuery": self._answer_inline_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "close": self._return_true,
            "logOut": self._return_true,
        }

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``TelegramAPIServer.from_base``."""
        if self._base_url is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._base_url

    async def start(self) -> None:
        """Start serving on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        """Wake pending long polls and shut the server down."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- inspection

    def calls_of(self, method: str) -> list[Call]:
        """The recorded calls of one method (case-insensitive), failed ones included."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int) -> list[FakeMessage]:
        """The bot's messages still present in a chat, oldest first, in their current state."""
        state = self._chats.get(chat_id)
        if state is None:
            return []
        return [
            message
            for message in sorted(state.messages.values(), key=lambda m: m.message_id)
            if message.sender.id == self.bot_user.id
        ]

    def message(self, chat_id: int, message_id: int) -> FakeMessage | None:
        """Any message of a chat (the bot's or a user's), or None if unknown or deleted."""
        state = self._chats.get(chat_id)
        return state.messages.get(message_id) if state else None

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Queued updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def is_settled(self, quiet: float) -> bool:
        """True if no request other than getUpdates is running or arrived in ``quiet`` seconds."""
        return self._in_flight == 0 and time.monotonic() - self._last_activity >= quiet

    async def wait_until(
        self,
        condition: Callable[[], object],
        timeout: float = 10.0,  # noqa: ASYNC109 - a test helper's deadline, not a request's
        *,
        what: str = "condition",
    ) -> None:
        """Wait until ``condition()`` is truthy; raise AssertionError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            await self._wait_for_change(min(remaining, 0.05))

    # ----------------------------------------------------------------- chats and users

    def add_chat(self, chat: FakeChat) -> None:
        """Make a chat known, so the bot can send to it before any update came from it."""
        self._chat_state(chat)

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Set what getChatMember reports: "creator", "member", "left" or "kicked"."""
        self._chat_by_id(chat_id).member_status[user_id] = status

    def _chat_state(self, chat: FakeChat) -> _ChatState:
        state = self._chats.get(chat.id)
        if state is None:
            state = self._chats[chat.id] = _ChatState(chat)
        return state

    def _chat_by_id(self, chat_id: int | str) -> _ChatState:
        if isinstance(chat_id, str):
            for state in self._chats.values():
                if state.chat.username and f"@{state.chat.username}" == chat_id:
                    return state
            raise bad_request("chat not found")
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        return self._chats[chat_id]

    # ----------------------------------------------------------------- updates

    def push_update(self, update: Mapping[str, Any]) -> int:
        """Queue a raw Update for getUpdates (assigning ``update_id`` if missing); return its id.

        Messages in it are stored (so the bot can reply to them), and callback and inline
        queries become answerable.
        """
        queued = dict(update)
        if "update_id" not in queued:
            self._last_update_id += 1
            queued["update_id"] = self._last_update_id
        self._last_update_id = max(self._last_update_id, queued["update_id"])
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            if key in queued:
                self._store_incoming(queued[key])
        for payload in queued.values():
            if isinstance(payload, dict) and "from" in payload:
                user = FakeUser.from_dict(payload["from"])
                self._users[user.id] = user
        if "callback_query" in queued:
            self._pending_callbacks.add(queued["callback_query"]["id"])
        if "inline_query" in queued:
            self._pending_inline.add(queued["inline_query"]["id"])
        self._updates.append(queued)
        self._notify()
        return int(queued["update_id"])

    def _store_incoming(self, data: Mapping[str, Any]) -> None:
        state = self._chat_state(FakeChat.from_dict(data["chat"]))
        reply = data.get("reply_to_message")
        reply_to = state.messages.get(reply["message_id"]) if reply else None
        state.messages[data["message_id"]] = FakeMessage.from_dict(data, reply_to)
        state.last_message_id = max(state.last_message_id, data["message_id"])

    def message_update(
        self,
        chat: FakeChat,
        user: FakeUser,
        text: str | None = None,
        *,
        entities: list[JsonDict] | None = None,
        reply_to: int | FakeMessage | None = None,
        thread_id: int | None = None,
        document: JsonDict | None = None,
        caption: str | None = None,
    ) -> JsonDict:
        """An Update with a new message from ``user`` in ``chat``.

        Commands, @mentions and URLs in the text or caption get entities as Telegram adds
        them, unless ``entities`` is given. A reply inherits the replied message's topic.
        """
        state = self._chat_state(chat)
        message: JsonDict = {
            "message_id": state.next_message_id(),
            "from": user.to_dict(),
            "chat": chat.to_dict(),
            "date": int(time.time()),
        }
        if reply_to is not None:
            reply_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
            replied = state.messages.get(reply_id)
            if replied is None:
                raise ValueError(f"message {reply_id} is not in chat {chat.id}")
            message["reply_to_message"] = replied.to_dict(with_reply=False)
            thread_id = thread_id if thread_id is not None else replied.thread_id
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.is_forum:
                message["is_topic_message"] = True
        if text is not None:
            message["text"] = text
            found = detect_entities(text) if entities is None else entities
            if found:
                message["entities"] = found
        if document is not None:
            message["document"] = document
        if caption is not None:
            message["caption"] = caption
            found = detect_entities(caption) if entities is None else entities
            if found:
                message["caption_entities"] = found
        return {"message": message}

    def callback_update(
        self, chat: FakeChat, user: FakeUser, message: int | FakeMessage, data: str
    ) -> JsonDict:
        """An Update with ``user`` pressing a callback button of ``message`` in ``chat``."""
        message_id = message if isinstance(message, int) else message.message_id
        stored = self._chat_state(chat).messages.get(message_id)
        if stored is None:
            raise ValueError(f"message {message_id} is not in chat {chat.id}")
        return {
            "callback_query": {
                "id": self._next_query_id(),
                "from": user.to_dict(),
                "message": stored.to_dict(),
                "chat_instance": str(abs(chat.id) * 7919 % 10**12),
                "data": data,
            }
        }

    def inline_query_update(self, user: FakeUser, query: str, offset: str = "") -> JsonDict:
        """An Update with an inline query typed by ``user``."""
        return {
            "inline_query": {
                "id": self._next_query_id(),
                "from": user.to_dict(),
                "query": query,
                "offset": offset,
                "chat_type": "sender",
            }
        }

    def _next_query_id(self) -> str:
        self._last_query_id += 1
        return str(4_000_000_000_000_000 + self._last_query_id)

    # ----------------------------------------------------------------- files

    def add_file(self, content: bytes, file_name: str, mime_type: str | None = None) -> JsonDict:
        """Register a file (as if a user uploaded it) and return its Document object."""
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        return self._store_file(content, file_name, mime).document()

    def _store_file(self, content: bytes, file_name: str, mime_type: str) -> StoredFile:
        number = len(self._files) + 1
        suffix = Path(file_name).suffix
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:08d}",
            file_unique_id=f"AgAD{number:06d}",
            file_name=file_name,
            mime_type=mime_type,
            content=content,
            file_path=f"documents/file_{number}{suffix}",
        )
        self._files[stored.file_id] = stored
        return stored

    # ----------------------------------------------------------------- scripted failures

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Make the next ``times`` valid calls of ``method`` (to ``chat_id``, if given) fail.

        Without ``description`` Telegram's usual text for the code is used, e.g.
        "Too Many Requests: retry after N" for 429 and "Forbidden: bot was blocked by the
        user" for 403.
        """
        parameters: JsonDict = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
                parameters.setdefault("retry_after", retry_after or 1)
            elif migrate_to_chat_id is not None:
                description = "Bad Request: group chat was upgraded to a supergroup chat"
            else:
                description = _DEFAULT_FAILURES.get(error_code, f"Error {error_code}")
        error = ApiError(error_code, description, parameters or None)
        self._failures.append(_FailRule(method.lower(), error, times, chat_id))

    def _take_failure(self, method: str, params: Mapping[str, Any]) -> ApiError | None:
        for rule in self._failures:
            if rule.method != method.lower():
                continue
            if rule.chat_id is not None and str(params.get("chat_id")) != str(rule.chat_id):
                continue
            rule.times -= 1
            if rule.times <= 0:
                self._failures.remove(rule)
            return rule.error
        return None

    # ----------------------------------------------------------------- HTTP layer

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, seconds: float) -> None:
        """Return when the state changes (a request, an update), or after ``seconds``."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.content, content_type=stored.mime_type)
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = Call(method=method, params={}, time=time.time())
        self.calls.append(call)
        is_poll = method.lower() == "getupdates"
        if not is_poll:
            self._in_flight += 1
            self._last_activity = time.monotonic()
        try:
            call.result = await self._dispatch(request, call)
            body: JsonDict = {"ok": True, "result": call.result}
            status = 200
        except ApiError as error:
            call.error = body = error.body()
            status = error.error_code
        finally:
            if not is_poll:
                self._in_flight -= 1
                self._last_activity = time.monotonic()
            self._notify()
        return web.json_response(body, status=status)

    async def _dispatch(self, request: web.Request, call: Call) -> Any:
        if request.match_info["token"] != self.token:
            raise ApiError(401, "Unauthorized")
        found = self.spec.method(call.method)
        if found is None:
            raise ApiError(404, "Not Found: method not found")
        call.method, fields = found
        call.params = await self._read_params(request)
        call.params = self.spec.check_params(fields, call.params)
        failure = self._take_failure(call.method, call.params)
        if failure is not None:
            call.scripted = True
            raise failure
        handler = self._handlers.get(call.method)
        if handler is None:
            raise ApiError(501, f"Not Implemented: the fake Bot API has no {call.method}")
        result = handler(call.params)
        return await result if asyncio.iscoroutine(result) else result

    @staticmethod
    async def _read_params(request: web.Request) -> JsonDict:
        params: JsonDict = dict(request.query)
        if not request.body_exists:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON body") from None
            if not isinstance(body, dict):
                raise bad_request("JSON body must be an object")
            params.update(body)
            return params
        form = await request.post()
        files: dict[str, UploadedFile] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                attached = files.pop(value.removeprefix("attach://"), None)
                if attached is not None:
                    params[key] = attached
        params.update(files)
        return params

    # ----------------------------------------------------------------- content checks

    def _format(
        self,
        raw: str,
        parse_mode: str | None,
        entities: list[JsonDict] | None,
        *,
        limit: int,
        kind: str,
    ) -> tuple[str, list[JsonDict]]:
        """Apply ``parse_mode`` and Telegram's length limit; return (plain text, entities)."""
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                text, found = parse_html(raw, strict=self.strict_html)
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        elif mode in ("", "markdown", "markdownv2"):
            text, found = raw, list(entities or [])
        else:
            raise bad_request("unsupported parse_mode")
        text, found = _strip_text(text, found)
        if kind == "text" and not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > limit:
            raise bad_request(f"message {'caption ' if kind == 'caption' else ''}is too long")
        return text, found

    @staticmethod
    def _check_inline_keyboard(markup: Any) -> JsonDict | None:
        """Check an inline keyboard's buttons; return it, or None for other markups."""
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None
        for row in markup["inline_keyboard"]:
            for button in row:
                if not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text must be non-empty")
                actions = [name for name in _BUTTON_ACTIONS if name in button]
                if not actions:
                    raise bad_request(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                if len(actions) > 1:
                    raise bad_request(
                        "can't parse inline keyboard button: exactly one of the optional "
                        f"fields must be used, got {', '.join(actions)}"
                    )
                if (
                    "callback_data" in button
                    and not 1 <= len(button["callback_data"].encode()) <= 64
                ):
                    raise bad_request("BUTTON_DATA_INVALID")
                if "url" in button and not re.match(r"(https?|tg)://\S", button["url"]):
                    raise bad_request("BUTTON_URL_INVALID")
        return markup

    def _reply_target(self, state: _ChatState, params: JsonDict) -> FakeMessage | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target_state = state
        if reply.get("chat_id") is not None:
            target_state = self._chat_by_id(reply["chat_id"])
        target = target_state.messages.get(int(message_id))
        if target is None and not reply.get("allow_sending_without_reply"):
            raise bad_request("message to be replied not found")
        return target

    def _new_message(self, params: JsonDict, **content: Any) -> JsonDict:
        state = self._chat_by_id(params["chat_id"])
        reply_to = self._reply_target(state, params)
        thread_id = params.get("message_thread_id")
        if thread_id is None and reply_to is not None:
            thread_id = reply_to.thread_id
        message = FakeMessage(
            message_id=state.next_message_id(),
            chat=state.chat,
            sender=self.bot_user,
            date=int(time.time()),
            parse_mode=params.get("parse_mode"),
            reply_markup=self._check_inline_keyboard(params.get("reply_markup")),
            thread_id=thread_id,
            reply_to=reply_to,
            **content,
        )
        state.messages[message.message_id] = message
        return message.to_dict()

    def _message_to_edit(self, params: JsonDict) -> FakeMessage | None:
        """The bot message an edit targets; None for inline messages (not tracked)."""
        if params.get("inline_message_id"):
            return None
        if "chat_id" not in params:
            raise bad_request("chat_id is empty")
        if "message_id" not in params:
            raise bad_request("message identifier is not specified")
        message = self._chat_by_id(params["chat_id"]).messages.get(params["message_id"])
        if message is None:
            raise bad_request("message to edit not found")
        if message.sender.id != self.bot_user.id:
            raise bad_request("message can't be edited")
        return message

    @staticmethod
    def _apply_edit(
        message: FakeMessage, text: str, entities: list[JsonDict], markup: JsonDict | None
    ) -> JsonDict:
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad_request(_NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.edit_date = int(time.time())
        return message.to_dict()

    # ----------------------------------------------------------------- methods

    @staticmethod
    def _return_true(params: JsonDict) -> bool:
        return True

    def _get_me(self, params: JsonDict) -> JsonDict:
        return {
            **self.bot_user.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    async def _get_updates(self, params: JsonDict) -> list[JsonDict]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        if "allowed_updates" in params:
            self.allowed_updates = list(params["allowed_updates"])
        self._confirm(params.get("offset", 0))
        limit = min(max(params.get("limit", 100), 1), 100)
        wait = min(max(params.get("timeout", 0), 0), self.max_poll_wait)
        deadline = time.monotonic() + wait
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._deliverable()[:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._closing:
                break
            await self._wait_for_change(remaining)
        self.delivered_update_ids.update(update["update_id"] for update in batch)
        return copy.deepcopy(batch)

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    def _deliverable(self) -> list[JsonDict]:
        """Pending updates, after dropping those of types the bot did not ask for."""
        kept = []
        for update in self._updates:
            kind = next(key for key in update if key != "update_id")
            if self.allowed_updates:
                wanted = kind in self.allowed_updates
            else:
                wanted = kind not in _DEFAULT_ALLOWED_UPDATES
            if wanted:
                kept.append(update)
            else:
                self.dropped_update_ids.add(update["update_id"])
        self._updates = kept
        return kept

    def _set_webhook(self, params: JsonDict) -> bool:
        url = params["url"]
        if url and not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _delete_webhook(self, params: JsonDict) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: JsonDict) -> JsonDict:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _send_message(self, params: JsonDict) -> JsonDict:
        text, entities = self._format(
            params["text"],
            params.get("parse_mode"),
            params.get("entities"),
            limit=TEXT_LIMIT,
            kind="text",
        )
        return self._new_message(params, text=text, html=params["text"], entities=entities)

    def _send_document(self, params: JsonDict) -> JsonDict:
        self._chat_by_id(params["chat_id"])
        document = params["document"]
        if isinstance(document, UploadedFile):
            if not document.data:
                raise bad_request("file must be non-empty")
            mime = mimetypes.guess_type(document.filename)[0] or document.content_type
            stored = self._store_file(document.data, document.filename, mime)
        elif document in self._files:
            stored = self._files[document]
        elif document.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        caption = params.get("caption", "")
        text, entities = self._format(
            caption,
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=CAPTION_LIMIT,
            kind="caption",
        )
        return self._new_message(
            params, text=text, html=caption, entities=entities, document=stored.document()
        )

    def _edit_message_text(self, params: JsonDict) -> JsonDict | bool:
        if "text" not in params:
            raise bad_request("message text is empty")
        text, entities = self._format(
            params["text"],
            params.get("parse_mode"),
            params.get("entities"),
            limit=TEXT_LIMIT,
            kind="text",
        )
        markup = self._check_inline_keyboard(params.get("reply_markup"))
        message = self._message_to_edit(params)
        if message is None:
            return True
        if message.document is not None:
            raise bad_request("there is no text in the message to edit")
        result = self._apply_edit(message, text, entities, markup)
        message.html, message.parse_mode = params["text"], params.get("parse_mode")
        return result

    def _edit_message_caption(self, params: JsonDict) -> JsonDict | bool:
        caption = params.get("caption", "")
        text, entities = self._format(
            caption,
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=CAPTION_LIMIT,
            kind="caption",
        )
        markup = self._check_inline_keyboard(params.get("reply_markup"))
        message = self._message_to_edit(params)
        if message is None:
            return True
        if message.document is None:
            raise bad_request("there is no caption in the message to edit")
        result = self._apply_edit(message, text, entities, markup)
        message.html, message.parse_mode = caption, params.get("parse_mode")
        return result

    def _edit_message_reply_markup(self, params: JsonDict) -> JsonDict | bool:
        markup = self._check_inline_keyboard(params.get("reply_markup"))
        message = self._message_to_edit(params)
        if message is None:
            return True
        return self._apply_edit(message, message.text, message.entities, markup)

    def _delete_message(self, params: JsonDict) -> bool:
        state = self._chat_by_id(params["chat_id"])
        if state.messages.pop(params["message_id"], None) is None:
            raise bad_request("message to delete not found")
        return True

    def _delete_messages(self, params: JsonDict) -> bool:
        state = self._chat_by_id(params["chat_id"])
        if not 1 <= len(params["message_ids"]) <= 100:
            raise bad_request("message_ids must contain 1-100 identifiers")
        for message_id in params["message_ids"]:
            state.messages.pop(message_id, None)
        return True

    def _answer_callback_query(self, params: JsonDict) -> bool:
        query_id = params["callback_query_id"]
        if query_id not in self._pending_callbacks:
            raise bad_request(_QUERY_TOO_OLD)
        if len(params.get("text", "")) > CALLBACK_ANSWER_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        self.callback_answers[query_id] = params
        return True

    def _answer_inline_query(self, params: JsonDict) -> bool:
        query_id = params["inline_query_id"]
        results = params["results"]
        if len(results) > INLINE_RESULTS_LIMIT:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            if not 1 <= len(result["id"].encode()) <= 64:
                raise bad_request("RESULT_ID_INVALID")
            if result["id"] in seen:
                raise bad_request("RESULT_ID_DUPLICATE")
            seen.add(result["id"])
            self._check_inline_keyboard(result.get("reply_markup"))
            content = result.get("input_message_content") or {}
            if "message_text" in content:
                self._format(
                    content["message_text"],
                    content.get("parse_mode"),
                    content.get("entities"),
                    limit=TEXT_LIMIT,
                    kind="text",
                )
        if query_id not in self._pending_inline:
            raise bad_request(_QUERY_TOO_OLD)
        self._pending_inline.discard(query_id)
        self.inline_answers[query_id] = params
        return True

    def _send_chat_action(self, params: JsonDict) -> bool:
        self._chat_by_id(params["chat_id"])
        if params["action"] not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    @staticmethod
    def _commands_key(params: JsonDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get("language_code", "")

    def _set_my_commands(self, params: JsonDict) -> bool:
        commands = params["commands"]
        if len(commands) > COMMANDS_LIMIT:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not _COMMAND.fullmatch(command["command"]):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    def _delete_my_commands(self, params: JsonDict) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: JsonDict) -> list[JsonDict]:
        return self.commands.get(self._commands_key(params), [])

    def _get_file(self, params: JsonDict) -> JsonDict:
        stored = self._files.get(params["file_id"])
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _get_chat(self, params: JsonDict) -> JsonDict:
        chat = self._chat_by_id(params["chat_id"]).chat
        return {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _get_chat_member(self, params: JsonDict) -> JsonDict:
        state = self._chat_by_id(params["chat_id"])
        user_id = params["user_id"]
        user = self._known_user(user_id)
        status = state.member_status.get(user_id, "member")
        member: JsonDict = {"status": status, "user": user.to_dict()}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _known_user(self, user_id: int) -> FakeUser:
        if user_id == self.bot_user.id:
            return self.bot_user
        if user_id in self._users:
            return self._users[user_id]
        chat = self._chats[user_id].chat if user_id in self._chats else None
        if chat is not None and chat.type == "private":
            return FakeUser(user_id, chat.first_name or "", chat.username, chat.last_name)
        raise bad_request("user not found")
