"""Project configuration: `kvmlint.toml`, or `[tool.kvmlint]` in `pyproject.toml`.

The nearest one at or above the checked root wins; the search stops at the
filesystem root or at the directory that holds `.git` (the repository's top).
Command-line flags override what the file says.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kvmlint import rules
from kvmlint.errors import UsageError
from kvmlint.reporters import FORMATS

ERAS = ("2012", "current")
KEYS = ("select", "ignore", "exclude", "per-file-ignores", "era", "jobs", "format", "output-file")


@dataclass(frozen=True)
class Config:
    source: str | None = None  # how messages name the file, None without one
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()  # (glob, rule codes)
    era: str | None = None
    jobs: int | None = None
    format: str | None = None
    output_file: Path | None = None
    directory: Path = field(default=Path("."), compare=False)

    def ignored_codes(self, path: str) -> frozenset[str]:
        """Rule codes that `per-file-ignores` switches off for a root-relative path."""
        name = path.rsplit("/", 1)[-1]
        codes: frozenset[str] = frozenset()
        for pattern, pattern_codes in self.per_file_ignores:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(name, pattern):
                codes |= pattern_codes
        return codes


def find_config_file(root: Path) -> tuple[Path, bool] | None:
    """The config file for `root` and whether it is a pyproject.toml, or None."""
    for directory in (root, *root.parents):
        candidate = directory / "kvmlint.toml"
        if candidate.is_file():
            return candidate, False
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and b"[tool.kvmlint" in pyproject.read_bytes():
            return pyproject, True
        if (directory / ".git").exists():
            return None
    return None


def load_config(root: Path) -> Config:
    found = find_config_file(root)
    if found is None:
        return Config()
    path, is_pyproject = found
    name = _display(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{name}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{name}: invalid TOML: {error}") from None
    if is_pyproject:
        name = f"{name}: [tool.kvmlint]"
        table = document.get("tool", {}).get("kvmlint", {})
        if not isinstance(table, dict):
            raise UsageError(f"{name} must be a table")
    else:
        table = document
    return _parse(table, name, path.parent)


def _parse(table: dict, name: str, directory: Path) -> Config:
    for key in table:
        if key not in KEYS:
            raise UsageError(f"{name}: unknown key '{key}'")
    read = _Reader(table, name)
    output_file = read.string("output-file")
    return Config(
        source=name,
        select=read.rules("select"),
        ignore=read.rules("ignore"),
        exclude=read.strings("exclude"),
        per_file_ignores=read.per_file_ignores(),
        era=read.choice("era", ERAS),
        jobs=read.positive_int("jobs"),
        format=read.choice("format", FORMATS),
        output_file=directory / output_file if output_file else None,
        directory=directory,
    )


class _Reader:
    """Typed access to the table, each mistake one line naming file and key."""

    def __init__(self, table: dict, name: str):
        self.table, self.name = table, name

    def fail(self, key: str, problem: str):
        raise UsageError(f"{self.name}: '{key}' {problem}")

    def strings(self, key: str, value=None) -> tuple[str, ...]:
        value = self.table.get(key, []) if value is None else value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, "must be a list of strings")
        return tuple(value)

    def rules(self, key: str, value=None) -> tuple[str, ...]:
        words = self.strings(key, value)
        for word in words:
            self._resolve(key, word)
        return words

    def per_file_ignores(self) -> tuple[tuple[str, frozenset[str]], ...]:
        key = "per-file-ignores"
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, "must be a table of glob = [rule codes]")
        entries = []
        for pattern, words in value.items():
            entry_key = f"{key}.{pattern}"
            codes = frozenset(self._resolve(entry_key, word) for word in self.strings(entry_key, words))
            entries.append((pattern, codes))
        return tuple(entries)

    def _resolve(self, key: str, word: str) -> str:
        try:
            return rules.resolve(word).rule.code
        except UsageError as error:
            self.fail(key, f"names an {error}")

    def string(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(key, "must be a string")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.table.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # `era = 2012` reads as well as `era = "2012"`
        if value is not None and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}")
        return value

    def positive_int(self, key: str) -> int | None:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            self.fail(key, "must be a positive integer")
        return value


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()
