"""What `fix --format-patch` and `fix --commit` ask of the QEMU checkout's git.

git runs through kvmlint.git.run, with the repository's programs switched off:
kvmlint reads the repository and, for `--commit`, records its own change
sets, nothing more.  Before a fix is written, the work tree must hold HEAD's
content, also where `git status` does not look (files git was told to
assume unchanged or to skip), and a sparse checkout must not leave out a
file the fix would break.  Each commit is then built from HEAD's tree and
kvmlint's own blobs in a temporary index, never from the work tree; the
branch moves once, from the commit the fix started on, when every commit
exists; and only then is the repository's index brought in line.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.git.repository import linked_git_dir
from kvmlint.git.run import SAFE_STATUS_OPTIONS, GitError, run_git, signing_options, user_settings

# "target/arm/kvm: Use ...", "hw/intc/arm_gic: ...", "kvm: ...", "accel/kvm, target/i386: ..."
SUBJECT_PREFIX = re.compile(r"^([A-Za-z0-9_.+/-]+(?:, ?[A-Za-z0-9_.+/-]+)*): \S")
HISTORY_DEPTH = 50  # recent commits that say how the files' subjects are prefixed
IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
HEADER_SUFFIXES = (".h", ".h.inc")
REGULAR_MODES = ("100644", "100755")
SHOWN_FILES = 3
GREP_MATCH = re.compile("HEAD:([^\0]*)\0([A-Za-z0-9_]+)\n")  # `git grep -z -o` on a tree: HEAD:path, NUL, match


def git(root: Path, *args: str, input: bytes | None = None,
        index_file: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return run_git(root, *args, input=input, index_file=index_file)
    except GitError as error:
        raise UsageError(f"git is needed for this: {error}") from None


def _output(root: Path, *args: str, input: bytes | None = None, index_file: Path | None = None) -> bytes:
    """`git ARGS`'s output; UsageError naming the git command when it fails."""
    done = git(root, *args, input=input, index_file=index_file)
    if done.returncode != 0:
        raise UsageError(f"git {args[0]}: {_first_line(done.stderr)}")
    return done.stdout


def is_work_tree(root: Path) -> bool:
    done = git(root, "rev-parse", "--is-inside-work-tree")
    return done.returncode == 0 and done.stdout.strip() == b"true"


def head(root: Path) -> str | None:
    done = git(root, "rev-parse", "--verify", "-q", "HEAD")
    if done.returncode != 0:
        return None
    return done.stdout.decode().strip() or None


@lru_cache(maxsize=16)
def object_format(root: Path) -> str:
    """The hash of the repository's object ids, "sha1" or "sha256" (`git init --object-format`);
    "sha1", git's default, outside a repository.  Every blob id kvmlint writes uses it."""
    try:
        done = run_git(root, "rev-parse", "--show-object-format")
    except GitError:
        return "sha1"
    name = done.stdout.decode("ascii", "replace").strip()
    return name if done.returncode == 0 and name in ("sha1", "sha256") else "sha1"


def blob_id(data: bytes, algorithm: str) -> str:
    """What `git hash-object` says of these bytes, given no conversion, in a repository of that object format."""
    return hashlib.new(algorithm, b"blob %d\0" % len(data) + data).hexdigest()


def require_clean(root: Path, purpose: str) -> str:
    """HEAD's commit id, when the work tree holds nothing uncommitted; a patch
    series or commits made from edited files would not apply to HEAD."""
    if not is_work_tree(root):
        raise UsageError(f"{purpose} needs a git work tree; {root} is not one (use --diff instead)")
    _require_own_repository(root, purpose)
    commit = head(root)
    if commit is None:
        raise UsageError(f"{purpose} needs a commit to start from; {root} has none yet")
    status = git(root, "status", *SAFE_STATUS_OPTIONS, "--porcelain", "-z", "--untracked-files=no")
    dirty = [entry[3:] for entry in status.stdout.decode("utf-8", "surrogateescape").split("\0") if entry[3:]]
    dirty += _hidden_edits(root)
    if dirty:
        raise UsageError(f"{purpose}: uncommitted changes in {_shown(dirty)}; commit or stash them first")
    return commit


def _require_own_repository(root: Path, purpose: str) -> None:
    """Refuse a work tree whose `.git` is a symlink, or a file naming a git directory that does
    not name it back (`repository.linked_git_dir`): its commits would go into a repository the
    tree merely points at.  $GIT_DIR is the user's own choice."""
    if os.environ.get("GIT_DIR"):
        return
    top = Path(os.fsdecode(_output(root, "rev-parse", "--show-toplevel").rstrip(b"\n")))
    dot_git = top / ".git"
    try:
        kind = os.lstat(dot_git).st_mode
    except OSError:
        return  # no `.git` here: git found the repository from its own settings
    if not stat.S_ISDIR(kind) and not (stat.S_ISREG(kind) and linked_git_dir(top) is not None):
        raise UsageError(f"{purpose}: {dot_git} names a git directory that does not name this work tree back "
                         "(not a worktree or submodule of it); refusing to use that repository")


def _index_entries(root: Path) -> list[tuple[str, str, str, str]]:
    """(tag, mode, blob id, path) of each index entry, the tag as `git ls-files -v` gives it:
    lower case when git assumes the file unchanged, S when it skips the work tree's copy."""
    listed = git(root, "ls-files", "-z", "-v", "-s").stdout.decode("utf-8", "surrogateescape")
    entries = []
    for entry in listed.split("\0"):
        fields, _, path = entry.partition("\t")
        if path:
            tag, mode, blob, _ = fields.split()
            entries.append((tag, mode, blob, path))
    return entries


def _hidden_edits(root: Path) -> list[str]:
    """Files whose index entry git was told to trust (assume-unchanged, skip-worktree) and
    whose work-tree content differs from it: `git status` does not show them."""
    trusted, changed, real_root = {}, [], os.path.realpath(root)
    for tag, mode, blob, path in _index_entries(root):
        if not (tag.islower() or tag == "S") or mode not in REGULAR_MODES:
            continue
        try:
            status = os.lstat(root / path)
        except OSError:
            continue  # not in the work tree: a sparse checkout leaves it out
        inside = os.path.commonpath([real_root, os.path.realpath(root / path)]) == real_root
        # No longer a regular file, reached through a link out of the tree, or a name git cannot read from a line
        if not stat.S_ISREG(status.st_mode) or not inside or "\n" in path:
            changed.append(path)
        else:
            trusted[path] = blob
    if trusted:
        names = "\n".join(trusted).encode("utf-8", "surrogateescape")
        hashed = _output(root, "hash-object", "--stdin-paths", input=names).decode().split()
        changed += [path for path, blob in zip(trusted, hashed) if trusted[path] != blob]
    return sorted(changed)


def require_identity(root: Path) -> str:
    """The committer as `Name <email>`, when git knows who authors and commits; checked
    before anything is written, as a commit without one fails."""
    idents = {}
    for variable in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        done = git(root, "var", variable)
        if done.returncode != 0:
            raise UsageError(f"--commit: git cannot say who you are ({_first_line(done.stderr)}); "
                             "set user.name and user.email")
        idents[variable] = done.stdout.decode("utf-8", "replace").strip().rsplit(" ", 2)[0]  # no timestamp
    return idents["GIT_COMMITTER_IDENT"]


def require_committed(root: Path, originals: dict[str, bytes], purpose: str) -> None:
    """Every file the fix changes (`originals`: path -> the content the fix read) holds exactly
    what HEAD has, and every file it creates is new to HEAD: the fix is then a change of HEAD,
    whatever the index or work tree hide."""
    changed = sorted(originals)
    committed = _head_entries(root, changed)
    untracked = [path for path in changed if path not in committed]
    if untracked:
        raise UsageError(f"{', '.join(untracked)}: not tracked by git; commit them first")
    differing = [path for path in changed
                 if _stored_id(root, path, originals[path], committed[path][1]) != committed[path][1]]
    if differing:
        raise UsageError(f"{purpose}: uncommitted changes in {_shown(differing)}; commit or stash them first")


def require_whole_checkout(root: Path, originals: dict[str, bytes], after: dict[str, bytes | None],
                           created: set[str], purpose: str) -> None:
    """Refuse a fix that takes a name away from a header while a file a sparse checkout
    leaves out still uses it, or that creates a file the checkout leaves out: kvmlint never
    saw those files, and the commits or patches would not build.  The refusal names them.
    `originals` and `after` are the changed files' contents before and after the fix,
    `created` the files it makes."""
    outside = _outside_checkout(root)
    if not outside:
        return
    created = sorted(created & outside)
    if created:
        raise UsageError(f"{purpose}: the fix creates {_shown(created)}, which HEAD has outside the sparse checkout; "
                         "check them out too (git sparse-checkout add)")
    names = _withdrawn_names(originals, after)
    if not names:
        return
    arguments = [option for name in sorted(names) for option in ("-e", name)]
    # every option that shapes grep's output is given: grep.lineNumber or grep.column would add fields
    done = git(root, "grep", "-z", "-o", "-w", "-F", "--no-color", "--no-line-number", "--no-column", "--no-full-name",
               *arguments, "HEAD", "--", ".")
    if done.returncode not in (0, 1):
        raise UsageError(f"git grep: {_first_line(done.stderr)}")
    uses: dict[str, set[str]] = {}
    for match in GREP_MATCH.finditer(done.stdout.decode("utf-8", "surrogateescape")):
        if match.group(1) in outside:
            uses.setdefault(match.group(1), set()).add(match.group(2))
    if uses:
        broken = [f"{path} ({', '.join(sorted(uses[path]))})" for path in sorted(uses)]
        raise UsageError(
            f"{purpose}: names the fix takes away are still used outside the sparse checkout, in {_shown(broken)}; "
            "check those files out too (git sparse-checkout add), so that kvmlint fixes them as well"
        )


def _outside_checkout(root: Path) -> set[str]:
    """Tracked files a sparse checkout leaves out of the work tree: kvmlint cannot read them."""
    return {path for tag, _, _, path in _index_entries(root) if tag == "S" and not os.path.lexists(root / path)}


def _withdrawn_names(originals: dict[str, bytes], after: dict[str, bytes | None]) -> set[str]:
    """The identifiers that some header the fix changes holds before and not after (a renamed
    or moved declaration, a renamed macro): every other user of them must change too."""
    names: set[bytes] = set()
    for path, original in originals.items():
        if path.endswith(HEADER_SUFFIXES) and path in after:
            names |= set(IDENTIFIER.findall(original)) - set(IDENTIFIER.findall(after[path]))
    return {name.decode("ascii") for name in names}


def _head_entries(root: Path, paths: list[str]) -> dict[str, tuple[str, str]]:
    """(mode, blob id) in HEAD of those of `paths` (root-relative) it has."""
    if not paths:
        return {}
    listed = _output(root, "--literal-pathspecs", "ls-tree", "-r", "-z", "HEAD", "--", *paths)
    entries = {}
    for entry in listed.decode("utf-8", "surrogateescape").split("\0"):
        fields, _, path = entry.partition("\t")
        if path:
            mode, _, blob = fields.split()
            entries[path] = (mode, blob)
    return entries


def _stored_id(root: Path, path: str, data: bytes, like: str) -> str:
    """The id git gives `data` as the content of `path` (line endings converted as its
    attributes say); computed here when that needs no conversion, as is the rule."""
    plain = blob_id(data, object_format(root))
    if plain == like:
        return plain
    return _output(root, "hash-object", "--stdin", f"--path={path}", input=data).decode().strip()


@lru_cache(maxsize=64)
def history_prefix(root: Path, paths: tuple[str, ...]) -> str | None:
    """The most common subject prefix of the recent commits touching `paths`
    (the convention QEMU developers follow by hand); None without history."""
    existing = [p for p in paths if (root / p).exists()]
    if not existing or not is_work_tree(root):
        return None
    log = git(root, "log", "--no-merges", f"-n{HISTORY_DEPTH}", "--format=%s", "--", *existing)
    if log.returncode != 0:
        return None
    prefixes = Counter()
    for subject in log.stdout.decode("utf-8", "replace").splitlines():
        match = SUBJECT_PREFIX.match(subject)
        if match and not subject.startswith(("Revert", "Merge")):
            prefixes[match.group(1)] += 1
    if not prefixes:
        return None
    return prefixes.most_common(1)[0][0]


def path_prefix(paths: list[str]) -> str | None:
    """The prefix QEMU's path rules give when history does not: `kvm` for
    KVM files, else the target directory (`target/arm`, `target-i386`), hw/
    subsystem or test suite all the files share; None when they share none."""
    if paths and all("kvm" in p.lower() for p in paths):
        return "kvm"
    places = {_subsystem(p) for p in paths}
    return places.pop() if len(places) == 1 and None not in places else None


def _subsystem(path: str) -> str | None:
    parts = path.split("/")
    if parts[0].startswith("target-") and len(parts) > 1:
        return parts[0]
    if parts[0] in ("target", "hw", "tests") and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}"
    return None


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "failed"


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:SHOWN_FILES]) + (f" and {len(paths) - SHOWN_FILES} more" if len(paths) > SHOWN_FILES else "")


class NotCommitted(UsageError):
    """No commit was recorded: HEAD and the index are as they were before."""


def wants_signature(root: Path, asked: bool) -> bool:
    """Whether commits are signed: asked for, or what the user's own commit.gpgSign says."""
    return asked or dict(user_settings(root, r"^commit\.gpgsign$", kind="bool")).get("commit.gpgsign") == "true"


def commit_each(root: Path, base: str, steps: list[tuple[dict[str, bytes], str]], signoff: str | None,
                sign: bool) -> list[str]:
    """One commit per step (the files it changes with their new bytes, its message), on top
    of `base`; `signoff` is the committer to sign off as, `sign` whether to sign them.

    Each commit is `base`'s tree plus the steps' blobs, built in a temporary index.  The
    branch moves from `base` to the last commit in one update, and the index then gets the
    committed blobs of the changed files.  NotCommitted says what failed, HEAD and the index
    being as they were; a plain UsageError, that HEAD could not be put back either."""
    try:
        commits, final = _make_commits(root, base, steps, signoff, sign)
    except UsageError as error:  # git failed, or could not run: only unreachable objects are left
        raise NotCommitted(str(error)) from None
    if not commits:
        return []
    last = commits[-1]
    failed = _failure(root, "update-ref", "-m", f"kvmlint fix --commit: {len(commits)} commit(s)", "HEAD", last, base)
    if failed:
        raise NotCommitted(f"git update-ref: {failed}")
    failed = _failure(root, "update-index", "-z", "--index-info", input=b"".join(_index_line(*e) for e in final))
    if failed:
        if _failure(root, "update-ref", "-m", "kvmlint fix --commit: undone", "HEAD", base, last):
            raise UsageError(f"git update-index: {failed}; HEAD stays at {last[:12]}, the fix started on "
                             f"{base[:12]} (git reset --soft {base[:12]})")
        raise NotCommitted(f"git update-index: {failed}")
    _failure(root, "update-index", "-q", "--refresh")  # the stat data of the files just staged; else a re-read
    return commits


def _failure(root: Path, *args: str, input: bytes | None = None) -> str | None:
    """Why `git ARGS` failed, in one line; None when it did its work."""
    try:
        done = run_git(root, *args, input=input)
    except GitError as error:
        return str(error)
    return _first_line(done.stderr) if done.returncode != 0 else None


def _make_commits(root: Path, base: str, steps: list[tuple[dict[str, bytes], str]], signoff: str | None,
                  sign: bool) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The commits of `steps` on top of `base`, as objects only (no ref or index of the
    repository changes), and (repository path, mode, blob id) of each file they change, as
    the last one leaves it."""
    prefix = _output(root, "rev-parse", "--show-prefix").decode("utf-8", "surrogateescape").strip("\n")
    changed = sorted({path for files, _ in steps for path in files})
    modes = {path: mode for path, (mode, _) in _head_entries(root, changed).items()}
    signing = signing_options(root) if sign else []
    commits, final = [], {}
    try:
        scratch_directory = tempfile.TemporaryDirectory(prefix="kvmlint-commit-")
    except OSError as error:
        raise NotCommitted(f"no temporary folder for the commits' index ({error.strerror or error})") from None
    with scratch_directory as scratch:
        index = Path(scratch) / "index"
        _output(root, "read-tree", base, index_file=index)
        parent = base
        for files, message in steps:
            entries = [(prefix + path, modes.get(path, "100644"), _stored_blob(root, path, data))
                       for path, data in sorted(files.items())]
            final.update((entry[0], entry) for entry in entries)
            _output(root, "update-index", "-z", "--index-info", input=b"".join(_index_line(*e) for e in entries),
                    index_file=index)
            tree = _output(root, "write-tree", index_file=index).decode().strip()
            text = _clean_message(_with_signoff(message, signoff) if signoff else message)
            parent = _output(root, *signing, "commit-tree", tree, "-p", parent, "-S" if sign else "--no-gpg-sign",
                             "-F", "-", input=text.encode("utf-8", "surrogateescape")).decode().strip()
            commits.append(parent)
    return commits, list(final.values())


def _stored_blob(root: Path, path: str, data: bytes) -> str:
    """The blob id of `data` as the new content of `path`, written to the object store
    (line endings converted as the file's attributes say, as `git add` does)."""
    return _output(root, "hash-object", "-w", "--stdin", f"--path={path}", input=data).decode().strip()


def _index_line(path: str, mode: str, blob: str) -> bytes:
    return f"{mode} {blob}\t{path}\0".encode("utf-8", "surrogateescape")


def _with_signoff(message: str, committer: str) -> str:
    return f"{message.rstrip()}\n\nSigned-off-by: {committer}\n"


def _clean_message(message: str) -> str:
    """The message as `git commit` stores it: no trailing spaces, no run of blank lines, one final newline."""
    lines = "\n".join(line.rstrip() for line in message.strip().splitlines())
    return re.sub(r"\n{3,}", "\n\n", lines) + "\n"
