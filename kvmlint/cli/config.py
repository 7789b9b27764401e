"""Project configuration: `kvmlint.toml`, or `[tool.kvmlint]` in `pyproject.toml`.

The nearest one at or above the checked root wins.  The search goes up only
to the directory that holds `.git` (the repository's top); outside a git
repository only the checked root itself is searched, so a file in some
parent directory cannot silently apply.  A tree's file chooses what to check,
never where kvmlint writes outside the tree: its `output-file` must be a report
of kvmlint's own, never a link, a file git tracks or keeps, a source, a build
file or a configuration file.  Command-line flags override what the file says.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kvmlint import rules
from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file
from kvmlint.reporters import FORMATS

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

ERAS = ("2012", "current")
KEYS = ("select", "extend-select", "ignore", "exclude", "per-file-ignores", "era", "jobs", "format", "output-file", "baseline")
MAX_CONFIG_BYTES = 1024 * 1024
CONFIG_NAMES = ("kvmlint.toml", "pyproject.toml")


@dataclass(frozen=True)
class Config:
    source: str | None = None  # how messages name the file, None without one
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()  # (glob, rule codes)
    era: str | None = None
    jobs: int | None = None
    format: str | None = None
    output_file: Path | None = None
    baseline: Path | None = None
    directory: Path = field(default=Path("."), compare=False)

    def ignored_codes(self, path: str) -> frozenset[str]:
        """Rule codes that `per-file-ignores` switches off for a root-relative path."""
        name = path.rsplit("/", 1)[-1]
        codes: frozenset[str] = frozenset()
        for pattern, pattern_codes in self.per_file_ignores:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(name, pattern):
                codes |= pattern_codes
        return codes


def _searched_directories(root: Path) -> list[Path]:
    """`root` and its parents up to the repository's top; only `root` outside a repository."""
    directories = [root, *root.parents]
    for index, directory in enumerate(directories):
        if _exists(directory / ".git"):
            return directories[: index + 1]
    return [root]


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def find_config(root: Path) -> tuple[Path, dict] | None:
    """The config file for `root` and its kvmlint table, or None."""
    for directory in _searched_directories(root):
        candidate = directory / "kvmlint.toml"
        if _exists(candidate):
            return candidate, _read_toml(candidate)
        pyproject = directory / "pyproject.toml"
        if _exists(pyproject):
            table = _kvmlint_table(pyproject)
            if table is not None:
                return pyproject, table
    return None


def _read_toml(path: Path, data: bytes | None = None) -> dict:
    name = _display(path)
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES) if data is None else data
        return tomllib.loads(data.decode("utf-8"))
    except UnreadableFile as problem:
        raise UsageError(f"{name}: {str(problem).removesuffix('; skipped')}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{name}: cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{name}: invalid TOML: {error}") from None
    except RecursionError:
        raise UsageError(f"{name}: invalid TOML: nested too deeply") from None


def _kvmlint_table(pyproject: Path) -> dict | None:
    """`[tool.kvmlint]` of a pyproject.toml in any TOML spelling, or None without one.

    A pyproject.toml that does not mention kvmlint belongs to someone else:
    it may be broken without stopping kvmlint.
    """
    try:
        data = read_regular_file(pyproject, MAX_CONFIG_BYTES)
    except UnreadableFile:
        return None
    if b"kvmlint" not in data:
        return None
    tool = _read_toml(pyproject, data).get("tool", {})
    name = _display(pyproject)
    if not isinstance(tool, dict):
        raise UsageError(f"{name}: 'tool' must be a table")
    if "kvmlint" not in tool:
        return None
    if not isinstance(tool["kvmlint"], dict):
        raise UsageError(f"{name}: [tool.kvmlint] must be a table")
    return tool["kvmlint"]


def load_config(root: Path) -> Config:
    found = find_config(root)
    if found is None:
        return Config()
    path, table = found
    name = _display(path) + (": [tool.kvmlint]" if path.name == "pyproject.toml" else "")
    return _parse(table, name, path.parent)


def _parse(table: dict, name: str, directory: Path) -> Config:
    from kvmlint.source.workers import default_jobs  # the parser workers: loaded by the command that runs them

    for key in table:
        if key not in KEYS:
            raise UsageError(f"{name}: unknown key '{key}'")
    read = _Reader(table, name)
    output_file = read.string("output-file")
    if output_file is not None:
        _check_output_file(read, directory, output_file)
    baseline = read.string("baseline")
    if baseline is not None and not _inside(directory, baseline):
        read.fail("baseline", "must name a file inside the tree")
    jobs = read.positive_int("jobs")
    return Config(
        source=name,
        select=read.rules("select"),
        extend_select=read.rules("extend-select"),
        ignore=read.rules("ignore"),
        exclude=read.strings("exclude"),
        per_file_ignores=read.per_file_ignores(),
        era=read.choice("era", ERAS),
        jobs=min(jobs, default_jobs()) if jobs else None,  # a tree cannot start more processes than CPUs
        format=read.choice("format", FORMATS),
        output_file=directory / output_file if output_file else None,
        baseline=directory / baseline if baseline else None,
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
            codes = frozenset(code for word in self.strings(entry_key, words) for code in self._resolve(entry_key, word))
            entries.append((pattern, codes))
        return tuple(entries)

    def _resolve(self, key: str, word: str) -> list[str]:
        """The codes `word` names: one rule, or a prefix's rules."""
        try:
            return [selection.rule.code for selection in rules.expand(word)]
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


def _check_output_file(read: _Reader, directory: Path, relative: str) -> None:
    """The tree's `output-file` names a report of kvmlint's own: a file inside the tree that is not a
    link, not one git keeps (tracked, or in a repository's folder), and not named like a source, a
    build file or git's or kvmlint's own files.  The report replaces the file whole: aimed at any of
    those, a tree's configuration would make `check` corrupt the repository or the user's work."""
    if "\0" in relative:
        read.fail("output-file", "must not contain a NUL character")
    if not _inside(directory, relative):
        read.fail("output-file", "must name a file inside the tree")
    target = directory / relative
    if target.is_symlink():
        read.fail("output-file", f"names a symlink ({relative}); kvmlint does not write the report through it (nothing written)")
    base = os.path.realpath(directory)
    resolved = os.path.relpath(os.path.realpath(target), base)
    names = [part for name in (relative, resolved) for part in Path(name).parts]
    if any(part.lower().startswith((".git", ".kvmlint")) for part in names):
        read.fail("output-file", "must not name git's or kvmlint's own files")
    folders = [folder for folder in Path(base, resolved).parents if folder == Path(base) or Path(base) in folder.parents]
    if any(map(_is_git_directory, folders)):
        read.fail("output-file", "must not name a file in a git repository's folder")
    if _is_tree_file_name(resolved) or _is_tree_file_name(Path(relative).as_posix()):
        read.fail("output-file", "must not name a source, build or configuration file")
    if _is_tracked(directory, resolved):
        read.fail("output-file", f"names a file git tracks ({resolved}); the report would replace it")


def _is_tree_file_name(relative: str) -> bool:
    from kvmlint.scope.cache import is_build_file
    from kvmlint.source.discover import C_SUFFIXES, PYTHON_SUFFIXES

    name = relative.rsplit("/", 1)[-1]
    return name.endswith(C_SUFFIXES + PYTHON_SUFFIXES) or name in CONFIG_NAMES or is_build_file(relative)


def _is_git_directory(folder: Path) -> bool:
    """Whether `folder` is laid out as git's own folder is (a bare repository, a `.git` under another name)."""
    return (folder / "HEAD").is_file() and (folder / "objects").is_dir() and (folder / "refs").is_dir()


def _is_tracked(directory: Path, relative: str) -> bool:
    """Whether git's index has `relative` (or files below it), asked with kvmlint's bounded git;
    outside a repository, or without git, nothing is tracked."""
    from kvmlint.git.run import GitError, run_git

    try:
        listed = run_git(directory, "--literal-pathspecs", "ls-files", "-z", "--", relative)
    except GitError:
        return False
    return listed.returncode == 0 and bool(listed.stdout)


def _inside(directory: Path, relative: str) -> bool:
    """Whether `directory/relative` stays in `directory`, symlinks followed."""
    base = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(base, relative))
    return target != base and target.startswith(base.rstrip(os.sep) + os.sep)


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()
