"""The README's settings table lists every field of :class:`service.config.Settings`."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import pytest

from service.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))


def settings_table() -> dict[str, str]:
    """Variable -> default cell of the table under ``## Settings``."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z0-9_]+)`", cells[0])
        assert len(names) == 1, f"one variable per row, spelled out: {line}"
        assert names[0] not in rows, f"{names[0]} is listed twice"
        rows[names[0]] = cells[1]
    return rows


def env_name(field: str) -> str:
    return (ENV_PREFIX + field).upper()


def documented_defaults(value: object) -> set[str]:
    """How a plain default may be written in the table (empty: described in words)."""
    if value is None or isinstance(value, list | tuple | dict):
        return set()
    if isinstance(value, bool):
        return {"true" if value else "false"}
    if isinstance(value, Enum):
        return {str(value.value)}
    if isinstance(value, float):
        return {f"{value:g}", repr(value)}
    return {str(value)}


def test_every_setting_is_in_the_readme_table() -> None:
    rows = settings_table()
    missing = [env_name(f) for f in Settings.model_fields if env_name(f) not in rows]
    assert missing == [], f"add to the README settings table: {missing}"


def test_the_readme_table_names_only_real_settings() -> None:
    known = {env_name(f) for f in Settings.model_fields}
    stale = sorted(set(settings_table()) - known)
    assert stale == [], f"not fields of Settings: {stale}"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_the_readme_states_each_default(field: str) -> None:
    cell = settings_table().get(env_name(field))
    if cell is None:
        pytest.skip("missing row: reported by test_every_setting_is_in_the_readme_table")
    info = Settings.model_fields[field]
    default = None if info.default_factory is not None else info.default
    expected = documented_defaults(default)
    assert cell, f"{env_name(field)}: say what the default is, or what happens when unset"
    if expected:
        assert any(f"`{e}`" in cell for e in expected), f"{env_name(field)}: default is {default!r}"
