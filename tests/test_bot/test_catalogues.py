"""The gettext catalogues: every text the bot's code marks is in the template and translated
in Russian and Azerbaijani, placeholders intact; the compiled .mo files match the .po files;
and user-facing modules build no English text with f-strings."""

from __future__ import annotations

import ast
import gettext
import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LANGUAGES, LOCALES_DIR

BOT = LOCALES_DIR.parent
TRANSLATED = [code for code in LANGUAGES if code != "en"]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
# Modules whose strings users read; their literals must come from the catalogues
USER_FACING = [
    *sorted((BOT / "handlers").glob("*.py")),
    BOT / "answers.py",
    BOT / "rendering.py",
    BOT / "rate_limit.py",
    BOT / "menus.py",
    BOT / "alerts" / "rendering.py",
]
# A word a person reads: three letters or more, not a /command or a name: prefix
_WORD = re.compile(r"(?<![/\w])[A-Za-z]*[a-z][A-Za-z]{2,}(?![\w:])|(?<![/\w])[a-z]{3,}(?![\w:])")
_SENDERS = {"answer", "reply", "edit_text", "send_message"}


def _extracted() -> set[str | tuple[str, str]]:
    """The msgids marked in the bot's code right now, as pybabel extract sees them."""
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(BOT), keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def _catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def _ids(catalog: Catalog) -> set[str | tuple[str, str]]:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def test_the_template_holds_every_text_the_code_marks() -> None:
    """bot/locales/newsbot.pot is up to date: run the README's pybabel commands if not."""
    template = _ids(_catalog(LOCALES_DIR / f"{DOMAIN}.pot"))

    assert _extracted() == template


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    """No empty or fuzzy msgstr, every plural form filled, and each translation names the
    same placeholders as its msgid (a lost ``{count}`` would raise KeyError at run time)."""
    catalog = _catalog(LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po", language)
    assert _ids(catalog) >= _extracted()
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings), f"{language}: untranslated {ids[0]!r}"
        assert "fuzzy" not in message.flags, f"{language}: fuzzy {ids[0]!r}"
        assert len(strings) == catalog.num_plurals or isinstance(message.id, str)
        wanted = set(_PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(_PLACEHOLDER.findall(string)) <= wanted, f"{language}: {string!r}"
        if isinstance(message.id, str):
            assert set(_PLACEHOLDER.findall(strings[0])) == wanted, f"{language}: {strings[0]!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogues_match_their_sources(language: str) -> None:
    """Each committed .mo is what ``pybabel compile`` makes of its .po today."""
    folder = LOCALES_DIR / language / "LC_MESSAGES"
    compiled = io.BytesIO()
    write_mo(compiled, _catalog(folder / f"{DOMAIN}.po", language))
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)
    with (folder / f"{DOMAIN}.mo").open("rb") as file:
        committed = gettext.GNUTranslations(file)

    assert committed._catalog == expected._catalog  # type: ignore[attr-defined]


def _f_string_words(node: ast.JoinedStr) -> list[str]:
    literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return _WORD.findall(literal)


@pytest.mark.parametrize("path", USER_FACING, ids=lambda p: str(p.relative_to(BOT.parent)))
def test_user_facing_texts_come_from_the_catalogues(path: Path) -> None:
    """No f-string with words, and no plain English literal sent as a message, in modules
    users read: such text would reach a Russian user in English."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = [
        f"line {node.lineno}: f-string with {words}"
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr) and (words := _f_string_words(node))
    ]
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in _SENDERS:
            continue
        literals = [
            a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        problems += [
            f"line {node.lineno}: {literal.value!r} sent untranslated"
            for literal in literals
            if _WORD.search(literal.value)
        ]
    assert not problems, "\n".join(problems)
