"""Which git directory belongs to a work tree, and which configuration files git will read for it.

Found from the files alone, before git runs: a `.git` file is someone else's
text, and a configuration file git reads (the repository's, or one it
includes), an ignore or attributes file of the repository (`info/exclude`,
`info/attributes`) or of the work tree (`.gitignore`, `.gitattributes` in
any folder) could be a FIFO that git waits on for ever, or /dev/zero that it
reads without end.  `require_readable_configuration` refuses those in one
line before the first git command; `linked_git_dir` says whether a `.git`
file's git directory names this work tree back, as git's own worktrees and
submodules do, so that nothing is written into a repository the tree merely
points at.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file

GIT_FILE_MAX_BYTES = 64 << 10
# A configuration file larger than this is not one anyone writes by hand.
CONFIG_MAX_BYTES = 4 << 20
# git stops following includes at this depth, too.
MAX_INCLUDE_DEPTH = 10
# Settings naming a file git reads on the commands kvmlint runs; one that is not a regular file of
# bounded size is replaced by an empty file.
FILE_SETTINGS = ("core.attributesfile", "core.excludesfile")
READ_SETTINGS = r"^(include(if\..*)?\.path|core\.(attributesfile|excludesfile))$"
CONFIG_TIMEOUT_SECONDS = 10
# What git reads, in the git directory and in each folder of the work tree, on the commands kvmlint runs.
REPOSITORY_READ_FILES = ("info/exclude", "info/attributes")
WORK_TREE_READ_FILES = frozenset({".gitignore", ".gitattributes"})


def linked_git_dir(root: Path) -> Path | None:
    """The git directory `root/.git` (a file "gitdir: <path>") names, when it is a git directory
    of this user that names this work tree back: a linked worktree's `gitdir` file names
    `<root>/.git` (what `git worktree` checks), a submodule's `core.worktree` is the root.
    Else None: a tree cannot send kvmlint's writes into a repository it merely points at."""
    dot_git = root / ".git"
    named = _git_file_target(dot_git, own=True)
    if named is None:
        return None
    git_dir = os.path.realpath(os.path.join(root, named))
    if not _is_own(git_dir, stat.S_ISDIR) or not _is_own(os.path.join(git_dir, "HEAD"), stat.S_ISREG):
        return None
    back = _read_own_file(os.path.join(git_dir, "gitdir"))
    if back is not None and _same_file(os.path.join(git_dir, os.fsdecode(back.strip())), dot_git):
        return Path(git_dir)
    worktree = _core_worktree(os.path.join(git_dir, "config"))
    if worktree is not None and _same_file(os.path.join(git_dir, worktree), root):
        return Path(git_dir)
    return None


def require_readable_configuration(root: Path) -> list[str]:
    """`-c` options for git in `root`, after checking that each configuration file of its
    repository, and each file they include, is a regular file of bounded size.

    UsageError, naming the file, for one that is not: git would wait on a FIFO, or read a
    device without end, before it answered.  The options replace a file setting of the
    repository's (FILE_SETTINGS) that names anything but a regular file with an empty file.
    Outside a repository (or with a `.git` git cannot read) there is nothing to check: git
    answers on its own that it finds none.
    """
    options = []
    for config in _repository_configs(root):
        for name, value in _included(config, 0):
            # a relative name is git's to resolve; kvmlint cannot check it, so it is not read
            if name in FILE_SETTINGS and not (os.path.isabs(value) and _is_small_regular_file(value)):
                options += ["-c", f"{name}={os.devnull}"]
    git_dir = _git_dir(root)
    if git_dir is not None:
        for folder in {git_dir, _common_dir(git_dir)}:
            for name in REPOSITORY_READ_FILES:
                _require_small_regular_file(folder / name, follow_symlinks=True)
        _require_readable_work_tree_files(root)
    return options


def _require_readable_work_tree_files(root: Path) -> None:
    """Each `.gitignore` and `.gitattributes` git may read from `root`: in the folders above it up
    to the work tree's top, and in every folder below it (but `.git`), links not followed.  One
    walk of the folders, each listed once; only the files of those names are looked at."""
    if not os.path.lexists(root / ".git"):
        for folder in root.parents:
            for name in WORK_TREE_READ_FILES:
                _require_small_regular_file(folder / name, follow_symlinks=False)
            if os.path.lexists(folder / ".git"):
                break
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for item in entries:
                    if item.name in WORK_TREE_READ_FILES:
                        _require_small_regular_file(Path(item.path), follow_symlinks=False)
                    elif item.name != ".git" and item.is_dir(follow_symlinks=False):
                        pending.append(item.path)
        except OSError:
            continue  # a folder git cannot list either: it reads nothing there


def _require_small_regular_file(path: Path, follow_symlinks: bool) -> None:
    """UsageError, naming `path`, unless it is absent or a regular file of at most CONFIG_MAX_BYTES
    (with `follow_symlinks`, one reached through a link counts too)."""
    try:
        status = os.stat(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        status = None
    if status is None or not stat.S_ISREG(status.st_mode) or status.st_size > CONFIG_MAX_BYTES:
        link = "" if follow_symlinks else " (not through a link)"
        raise UsageError(f"{path}: not a regular file of at most {CONFIG_MAX_BYTES >> 20} MiB{link}; "
                         "git would wait on it or read it without end")


def _repository_configs(root: Path) -> list[Path]:
    """The repository's own configuration files, as git would find them from `root`."""
    git_dir = _git_dir(root)
    if git_dir is None:
        return []
    return [_common_dir(git_dir) / "config", git_dir / "config.worktree"]


def _common_dir(git_dir: Path) -> Path:
    """The folder a linked worktree's git directory shares with its main one (its `commondir`)."""
    try:
        common_dir = read_regular_file(git_dir / "commondir", GIT_FILE_MAX_BYTES)
    except UnreadableFile:
        return git_dir
    named = os.fsdecode(common_dir.strip())
    return git_dir / named if named and "\0" not in named else git_dir


def _git_dir(root: Path) -> Path | None:
    """The git directory git would find from `root`: $GIT_DIR, else the nearest `.git`
    (a directory, or a file naming one) at or above it."""
    if os.environ.get("GIT_DIR"):
        return root / os.environ["GIT_DIR"]
    for directory in (root, *root.parents):
        dot_git = directory / ".git"
        try:
            status = os.stat(dot_git)
        except (OSError, ValueError):
            continue
        if stat.S_ISDIR(status.st_mode):
            return dot_git
        named = _git_file_target(dot_git, own=False)
        return None if named is None else directory / named
    return None


def _included(config: Path, depth: int) -> list[tuple[str, str]]:
    """The file settings (READ_SETTINGS) of `config` and of every file it includes (also under
    a condition: any may apply), each file checked first; none when `config` does not exist,
    as git reads none."""
    if not os.path.lexists(config):
        return []
    if not _is_small_regular_file(str(config)):
        raise UsageError(f"{config}: git configuration that is not a regular file of at most "
                         f"{CONFIG_MAX_BYTES >> 20} MiB; git would wait on it or read it without end")
    found = []
    for name, value in _settings(config, READ_SETTINGS):
        if not name.endswith(".path"):
            found.append((name, value))
        elif depth < MAX_INCLUDE_DEPTH:
            found += _included(Path(os.path.join(config.parent, value)), depth + 1)
    return found


def _settings(config: Path, pattern: str) -> list[tuple[str, str]]:
    """(name, value) of the settings of the one file `config` matching `pattern`, paths
    expanded; git reads that file only (no repository, no include followed)."""
    environment = {**os.environ, "GIT_DIR": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    try:
        result = subprocess.run(
            ["git", "config", "--file", str(config), "--no-includes", "--null", "--type=path", "--get-regexp", pattern],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=CONFIG_TIMEOUT_SECONDS, env=environment,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []  # git cannot run or read it: the command that follows says why
    records = result.stdout.decode("utf-8", "surrogateescape").split("\0") if result.returncode == 0 else []
    return [tuple(record.partition("\n")[::2]) for record in records if record]


def _is_small_regular_file(path: str) -> bool:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return True  # git reads nothing there
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(status.st_mode) and status.st_size <= CONFIG_MAX_BYTES


def _git_file_target(dot_git: Path, own: bool) -> str | None:
    """What a `.git` file names ("gitdir: <path>"); None for anything else, a name git could
    not open (a NUL) and, with `own`, a file not of this user or a symlink."""
    text = _read_own_file(dot_git) if own else _read_file(dot_git)
    if text is None or not text.startswith(b"gitdir:"):
        return None
    named = os.fsdecode(text[len(b"gitdir:"):].strip())
    if not named or "\n" in named or "\0" in named:
        return None
    return named


def _core_worktree(config: str) -> str | None:
    """`core.worktree` of a git config file, read as git writes it (the last one counts)."""
    text = _read_own_file(config)
    if text is None:
        return None
    section, worktree = None, None
    for line in text.decode("utf-8", "surrogateescape").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line[1 : line.find("]")].strip().lower() if "]" in line else None
            continue
        key, equals, value = line.partition("=")
        if section == "core" and equals and key.strip().lower() == "worktree":
            value = value.strip()
            worktree = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return worktree or None


def _read_file(path: Path) -> bytes | None:
    try:
        return read_regular_file(path, GIT_FILE_MAX_BYTES)
    except UnreadableFile:
        return None


def _read_own_file(path) -> bytes | None:
    """The bytes of a regular file of this user at `path`, not through a link; None else."""
    if not _is_own(path, stat.S_ISREG):
        return None
    try:
        return read_regular_file(path, GIT_FILE_MAX_BYTES, follow_symlinks=False)
    except UnreadableFile:
        return None


def _is_own(path, is_kind) -> bool:
    try:
        status = os.lstat(path)
    except (OSError, ValueError):
        return False
    return is_kind(status.st_mode) and status.st_uid == os.geteuid()


def _same_file(path: str, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False
