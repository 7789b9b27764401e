"""A tree cannot turn `kvmlint fix` against its user through the fix's own bookkeeping:
a planted journal, a planted lock, a `.git` file naming another directory, links in the
`--format-patch` folder or at the configuration's `output-file`, or a full disk."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvmlint.codemods import transaction
from kvmlint.codemods.engine import ChangeSet, Edit, NewFile, plan, write
from kvmlint.errors import UsageError
from kvmlint.store import user_key

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
TIMEOUT = 60


def limited(memory: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT, TIMEOUT))

    return limit


def kvmlint(*args, cwd=None, hook: str = "", memory: int = 2 << 30, timeout: float = TIMEOUT):
    """`kvmlint ARGS` in its own bounded process, after `hook` (Python run first)."""
    program = textwrap.dedent(hook) + "\nimport sys\nfrom kvmlint.cli import main\nsys.argv = ['kvmlint', *sys.argv[1:]]\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", program, *map(str, args)], cwd=cwd, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=timeout, preexec_fn=limited(memory),
    )


def one_line_refusal(done) -> str:
    """The single `kvmlint: ...` line of a run that stopped with exit status 2."""
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("kvmlint: "), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    return lines[0]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def contents(folder: Path, mtimes: bool = False) -> dict[str, object]:
    """Every name under `folder`: a file's bytes, a link's target, a folder (with `mtimes`:
    its mtime, which any file made and removed in it changes)."""
    found = {".": folder.lstat().st_mtime_ns if mtimes else "folder"}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[relative] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[relative] = path.lstat().st_mtime_ns if mtimes else "folder"
        elif path.is_file():
            found[relative] = path.read_bytes()
        else:
            found[relative] = "special"
    return found


def leftovers(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if p.name.endswith(transaction.TEMPORARY_SUFFIX) or "kvmlint-journal" in p.name or "kvmlint-fix.lock" in p.name
    )


@pytest.fixture
def tree(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree"))


def entry(root: Path, name: str, *, old: bytes | None, new: bytes | None, backup: str | None = "0.orig", **fields):
    """A journal entry as kvmlint writes it for `root/name`, with `fields` replaced."""
    target = os.path.join(os.path.realpath(root), name)
    directory, base = os.path.split(target)
    return {
        "path": name, "target": target, "temporary": os.path.join(directory, f".{base}.1{transaction.TEMPORARY_SUFFIX}"),
        "old_sha256": None if old is None else digest(old), "new_sha256": None if new is None else digest(new),
        "backup": backup, **fields,
    }


def sealed(journal: Path, body: bytes, key: bytes | None = None) -> bytes:
    """A journal record as this user's kvmlint seals it for `journal` (with `key`: as another key would)."""
    seal = transaction._seal(key or user_key(), journal, body)
    return b"kvmlint-journal %d %s\n%s" % (transaction.JOURNAL_FORMAT, seal.encode(), body)


def plant_journal(root: Path, record, files: dict[str, bytes] = {}) -> Path:
    """A journal sealed with this user's key, as kvmlint writes one: only what its record says is planted."""
    journal = root / ".kvmlint-journal"
    journal.mkdir()
    body = (record if isinstance(record, str) else json.dumps(record)).encode()
    (journal / "journal.json").write_bytes(sealed(journal, body))
    for name, data in files.items():
        (journal / name).write_bytes(data)
    return journal


# A. The journal's seal: only a record this user's kvmlint sealed, for this folder, is acted on.


def forged_journal(tree: Path) -> tuple[dict, bytes]:
    """A record of the shape kvmlint writes, state "renaming": hw/pc.c "renamed" (its new digest is
    the file as shipped), a planted backup for it, and a second entry not yet renamed, so that
    finishing it rolls hw/pc.c back to the backup's bytes."""
    payload = b"/* never reviewed */\nint planted;\n"
    shipped = (tree / "hw" / "pc.c").read_bytes()
    record = {"state": "renaming", "created_dirs": [], "entries": [
        entry(tree, "hw/pc.c", old=payload, new=shipped), entry(tree, "hw/zz.c", old=None, new=b"zz", backup=None),
    ]}
    return record, payload


@pytest.mark.parametrize("seal", ["none", "another-key", "another-folder", "another-format"])
def test_a_journal_not_sealed_by_this_users_kvmlint_is_refused_and_nothing_touched(tree, tmp_path, seal):
    record, payload = forged_journal(tree)
    journal = tree / ".kvmlint-journal"
    journal.mkdir()
    body = json.dumps(record).encode()
    if seal == "none":  # the record as kvmlint 0.1 wrote it
        data = body
    elif seal == "another-key":
        data = sealed(journal, body, key=b"k" * 32)
    elif seal == "another-folder":  # sealed by this user for another tree's journal, copied here
        data = sealed(tmp_path / "other" / ".kvmlint-journal", body)
    else:
        data = sealed(journal, body).replace(b"kvmlint-journal 1 ", b"kvmlint-journal 2 ", 1)
    (journal / "journal.json").write_bytes(data)
    (journal / "0.orig").write_bytes(payload)
    before = contents(tree)
    done = kvmlint("fix", "--select", "KVM003", str(tree))
    line = one_line_refusal(done)
    assert f"{journal} is not a fix journal kvmlint wrote" in line and "sealed" in line
    assert contents(tree) == before


def test_without_a_key_no_journal_is_taken_for_this_users(tree, tmp_path):
    """A user whose kvmlint never made its key never wrote a journal; checking one makes no key."""
    record, payload = forged_journal(tree)
    plant_journal(tree, record, {"0.orig": payload})
    before = contents(tree)
    home = tmp_path / "fresh-cache-home"
    done = kvmlint("fix", "--no-cache", str(tree), hook=f"import os\nos.environ['XDG_CACHE_HOME'] = {str(home)!r}\n")
    assert "this user's kvmlint has no key, so it never wrote one" in one_line_refusal(done)
    assert contents(tree) == before and not home.exists()


@pytest.mark.parametrize("kept", [False, True], ids=["rolled-back", "kept-beside-an-edit"])
def test_a_backup_that_does_not_hold_the_old_content_its_entry_records_is_never_restored(tree, kept):
    """Even sealed, a journal whose backup is not the old content it records (swapped since) is
    refused before anything is put back, or kept beside a file the user edited."""
    record, payload = forged_journal(tree)
    record["entries"][0]["old_sha256"] = digest(b"the old content\n")
    if kept:  # hw/pc.c edited since: its old content would be kept beside it
        record["entries"][0]["new_sha256"] = digest(b"what the fix wrote\n")
    plant_journal(tree, record, {"0.orig": payload})
    before = contents(tree)
    done = kvmlint("fix", "--select", "KVM003", str(tree))
    assert "entry 1: its backup does not hold the old content the entry records" in one_line_refusal(done)
    assert contents(tree) == before and not list(tree.rglob("*.kvmlint-orig*"))


def test_a_journal_this_users_kvmlint_sealed_is_finished(tree):
    """The seal changes nothing for a real interrupted fix: its renames are rolled back."""
    pc = (tree / "hw" / "pc.c").read_bytes()
    (tree / "hw" / "pc.c").write_bytes(b"what the fix wrote\n")
    record = {"state": "renaming", "created_dirs": [], "entries": [
        entry(tree, "hw/pc.c", old=pc, new=b"what the fix wrote\n"),
        entry(tree, "hw/zz.c", old=None, new=b"zz", backup=None),
    ]}
    plant_journal(tree, record, {"0.orig": pc})
    done = kvmlint("fix", "--select", "KVM003", str(tree))
    assert "rolled back an interrupted fix: restored hw/pc.c" in done.stderr, done.stderr
    assert (tree / "hw" / "pc.c").read_bytes() != b"what the fix wrote\n" and not leftovers(tree)


# A. The journal: every path inside the root, every backup a plain name in the journal, every field its shape.


@pytest.mark.parametrize("temporary", ["../victim/precious.txt", "{tmp}/victim/precious.txt", "{root}/kvm-all.c"])
def test_a_journal_cannot_make_fix_delete_a_file_that_is_not_its_temporary(tree, tmp_path, temporary):
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "precious.txt").write_text("precious\n")
    before = contents(tree)
    temporary = temporary.format(tmp=tmp_path, root=os.path.realpath(tree))
    journal = plant_journal(tree, {"state": "preparing", "created_dirs": [],
                                   "entries": [entry(tree, "x.c", old=None, new=b"x", backup=None, temporary=temporary)]})
    done = kvmlint("fix", ".", cwd=tree)
    assert "is not a fix journal kvmlint wrote" in one_line_refusal(done)
    assert (tmp_path / "victim" / "precious.txt").read_text() == "precious\n"
    assert (journal / "journal.json").exists()  # nothing touched: the user looks at it
    shutil.rmtree(journal)
    assert contents(tree) == before


@pytest.mark.parametrize("new", [None, b"written"], ids=["no-digest", "a-digest"])
@pytest.mark.parametrize("target", ["../x.sh", "{tmp}/x.sh", "{root}/escape/x.sh"], ids=["relative", "absolute", "through-link"])
def test_a_journal_cannot_make_the_roll_back_write_outside_the_tree(tree, tmp_path, target, new):
    (tmp_path / "outside").mkdir()
    (tree / "escape").symlink_to(tmp_path / "outside")
    kvm_all = (tree / "kvm-all.c").read_bytes()
    planted = entry(tree, "x.sh", old=b"old", new=new, target=target.format(tmp=tmp_path, root=os.path.realpath(tree)))
    planted["temporary"] = os.path.join(os.path.dirname(planted["target"]), ".x.sh.1" + transaction.TEMPORARY_SUFFIX)
    untouched = entry(tree, "kvm-all.c", old=kvm_all, new=b"other", backup="1.orig")
    plant_journal(tree, {"state": "renaming", "entries": [planted, untouched], "created_dirs": []},
                  {"0.orig": b"#!/bin/sh\necho pwned\n", "1.orig": kvm_all})
    outside = contents(tmp_path / "outside", mtimes=True)
    done = kvmlint("fix", ".", cwd=tree)
    one_line_refusal(done)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "tree"]
    assert contents(tmp_path / "outside", mtimes=True) == outside
    assert (tree / "kvm-all.c").read_bytes() == kvm_all


@pytest.mark.parametrize("backup", ["../../victim.txt", "{tmp}/victim.txt", "sub/0.orig"])
def test_a_journal_backup_is_only_a_plain_name_inside_the_journal(tree, tmp_path, backup):
    (tmp_path / "victim.txt").write_text("the user's\n")
    planted = entry(tree, "kvm-all.c", old=b"old", new=b"new", backup=backup.format(tmp=tmp_path))
    plant_journal(tree, {"state": "renaming", "entries": [planted], "created_dirs": []})
    done = kvmlint("fix", ".", cwd=tree)
    assert "its backup is not a file of the journal" in one_line_refusal(done)
    assert (tmp_path / "victim.txt").read_text() == "the user's\n"
    assert not list(tree.glob("*.kvmlint-orig*"))


@pytest.mark.parametrize("kind", ["link-to-parent", "subfolder", "foreign-file"])
def test_a_journal_folder_that_is_a_link_or_holds_what_kvmlint_never_writes_is_refused(tree, tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("a.txt", "b.txt"):
        (outside / name).write_text(name)
    journal = tree / ".kvmlint-journal"
    if kind == "link-to-parent":
        journal.symlink_to("../outside")
    else:
        journal.mkdir()
        (journal / "0.orig").write_text("x")
        if kind == "subfolder":
            (journal / "notes").mkdir()
        else:
            (journal / "notes.txt").write_text("mine")
    before = contents(outside, mtimes=True)
    done = kvmlint("fix", str(tree))
    one_line_refusal(done)
    assert contents(outside, mtimes=True) == before


@pytest.mark.parametrize("created", ["{tmp}/empty", "../empty", "{root}/escape/sub"])
def test_a_journal_removes_only_folders_inside_the_tree(tree, tmp_path, created):
    (tmp_path / "empty").mkdir()
    (tmp_path / "outside" / "sub").mkdir(parents=True)
    (tree / "escape").symlink_to(tmp_path / "outside")
    plant_journal(tree, {"state": "preparing", "entries": [],
                         "created_dirs": [created.format(tmp=tmp_path, root=os.path.realpath(tree))]})
    done = kvmlint("fix", ".", cwd=tree)
    assert "created folder 1 is not inside the tree" in one_line_refusal(done)
    assert (tmp_path / "empty").is_dir() and (tmp_path / "outside" / "sub").is_dir()


SHAPES = {
    "a-list": "[]",
    "deep": "[" * 200_000 + "]" * 200_000,
    "unknown-state": {"state": 5, "entries": [], "created_dirs": []},
    "entries-a-string": {"state": "renaming", "entries": "x", "created_dirs": []},
    "entry-missing-fields": {"state": "renaming", "entries": [{"path": "a"}], "created_dirs": []},
    "created-dirs-a-string": {"state": "preparing", "entries": [], "created_dirs": "x"},
    "created-dir-a-number": {"state": "preparing", "entries": [], "created_dirs": [7]},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_journal_of_the_wrong_shape_is_refused_in_one_line(tree, shape):
    plant_journal(tree, SHAPES[shape])
    before = contents(tree)
    done = kvmlint("fix", str(tree))
    assert "is not a fix journal kvmlint wrote" in one_line_refusal(done)
    assert contents(tree) == before


@pytest.mark.parametrize("field, value", [
    ("new_sha256", None), ("old_sha256", "not a digest"), ("backup", 7), ("path", "\x1b]0;owned\x07kvm-all.c"),
    ("path", "../../x"), ("temporary", None),
])
def test_a_journal_entry_with_a_field_of_the_wrong_shape_is_refused_and_never_printed(tree, field, value):
    planted = entry(tree, "kvm-all.c", old=b"old", new=b"new", **{field: value})
    plant_journal(tree, {"state": "renaming", "entries": [planted], "created_dirs": []}, {"0.orig": b"old"})
    before = contents(tree)
    done = kvmlint("fix", str(tree))
    assert "entry 1:" in one_line_refusal(done) and "\x1b" not in done.stderr
    assert contents(tree) == before


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_journal_naming_a_fifo_or_a_folder_neither_hangs_nor_crashes(tree, kind):
    target = tree / "hw" / "trap.c"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    kvm_all = (tree / "kvm-all.c").read_bytes()
    plant_journal(tree, {"state": "renaming", "created_dirs": [], "entries": [
        entry(tree, "hw/trap.c", old=b"old", new=b"new"), entry(tree, "kvm-all.c", old=kvm_all, new=b"x", backup="1.orig"),
    ]}, {"0.orig": b"old", "1.orig": kvm_all})
    done = kvmlint("fix", str(tree), timeout=30)
    assert "its file is not a regular file" in one_line_refusal(done)


@pytest.mark.parametrize("source", ["sparse", "dev-zero", "fifo"])
def test_an_unbounded_journal_record_is_refused_at_once_in_bounded_memory(tree, source):
    journal = tree / ".kvmlint-journal"
    journal.mkdir()
    record = journal / "journal.json"
    if source == "sparse":
        with open(record, "wb") as stream:
            stream.truncate(3 << 30)
    elif source == "dev-zero":
        record.symlink_to("/dev/zero")
    else:
        os.mkfifo(record)
    done = kvmlint("fix", str(tree), memory=1 << 30, timeout=30)
    one_line_refusal(done)


@pytest.mark.parametrize("already", ["a-file", "a-link"])
def test_the_old_content_kept_beside_an_edited_file_never_overwrites_a_file_or_follows_a_link(tree, tmp_path, already):
    """A file the user edited after an interrupted fix keeps the user's bytes, and
    its old content goes beside it under a name no file has."""
    (tmp_path / "victim.txt").write_text("the victim's\n")
    kept = tree / "hw" / "msi.c.kvmlint-orig"  # hw/msi.c has no automatic fix: the run leaves it alone
    if already == "a-file":
        kept.write_text("old content kept by an earlier interrupted fix\n")
    else:
        kept.symlink_to(tmp_path / "victim.txt")
    edited = (tree / "hw" / "msi.c").read_bytes()
    plant_journal(tree, {"state": "renaming", "created_dirs": [],
                         "entries": [entry(tree, "hw/msi.c", old=b"the old content\n", new=b"the fix's content\n")]},
                  {"0.orig": b"the old content\n"})
    done = kvmlint("fix", str(tree))
    assert done.returncode == 1 and "internal error" not in done.stderr, done.stderr
    second = os.path.join(os.path.realpath(tree), "hw", "msi.c.kvmlint-orig.2")
    assert f"hw/msi.c changed since an interrupted fix; left as it is (its old content: {second})" in done.stderr
    assert (tree / "hw" / "msi.c").read_bytes() == edited and Path(second).read_bytes() == b"the old content\n"
    assert (tmp_path / "victim.txt").read_text() == "the victim's\n"
    if already == "a-file":
        assert kept.read_text() == "old content kept by an earlier interrupted fix\n"
    else:
        assert kept.is_symlink()
    assert "fixed:" in done.stdout and not leftovers(tree)  # the fix then runs as usual


# A. Where the state lives: a `.git` file's git directory only when it names this work tree back.


def git(*args, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "protocol.file.allow=always", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("elsewhere", ["a-folder", "another-repository", "another-worktree"])
def test_a_git_file_cannot_send_the_lock_journal_and_backups_elsewhere(tree, tmp_path, elsewhere):
    other = tmp_path / "other"
    if elsewhere == "a-folder":
        other.mkdir()
        git_dir = other
    else:
        other.mkdir()
        git("init", "-q", cwd=other)
        (other / "f").write_text("f")
        git("add", "f", cwd=other)
        git("commit", "-qm", "f", cwd=other)
        git_dir = other / ".git"
        if elsewhere == "another-worktree":
            git("worktree", "add", "-q", str(tmp_path / "their-worktree"), cwd=other)
            git_dir = other / ".git" / "worktrees" / "their-worktree"
    (tree / ".git").write_text(f"gitdir: {git_dir}\n")
    before = contents(other, mtimes=True)
    done = kvmlint("fix", "--rule", "irq0-override", str(tree))
    assert done.returncode == 0 and "8 file(s) written" in done.stdout, done.stderr
    assert contents(other, mtimes=True) == before
    assert not leftovers(tree)


def test_a_linked_worktree_and_a_submodule_keep_the_state_in_their_own_git_directory(tmp_path):
    main = tmp_path / "main"
    main.mkdir()
    git("init", "-q", cwd=main)
    (main / "f").write_text("f")
    git("add", "f", cwd=main)
    git("commit", "-qm", "f", cwd=main)
    git("worktree", "add", "-q", str(tmp_path / "linked"), cwd=main)
    assert transaction.state_dir(tmp_path / "linked") == (main / ".git" / "worktrees" / "linked", "")
    git("submodule", "add", "-q", str(main), "sub", cwd=main)
    assert transaction.state_dir(main / "sub") == (main / ".git" / "modules" / "sub", "")
    assert transaction.state_dir(main) == (main / ".git", "")


# A. The lock: a regular file of this user, read only as a pid, within the deadline on every path.


@pytest.mark.parametrize("kind", ["dangling-link", "link-to-a-secret", "link-to-environ", "fifo", "folder"])
def test_a_lock_that_is_not_a_regular_file_is_refused_at_once_in_one_line(tree, tmp_path, kind):
    lock = tree / ".kvmlint-fix.lock"
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET-TOKEN\n")
    if kind == "dangling-link":
        lock.symlink_to(tmp_path / "nowhere")
    elif kind == "link-to-a-secret":
        lock.symlink_to(secret)
    elif kind == "link-to-environ":
        lock.symlink_to("/proc/self/environ")
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    before = contents(tree)
    done = kvmlint("fix", str(tree), timeout=30, hook="import os\nos.environ['KVMLINT_MARK'] = 'TOP-SECRET-TOKEN'\n")
    assert "is not a fix lock kvmlint made" in one_line_refusal(done)
    assert "TOP-SECRET-TOKEN" not in done.stderr + done.stdout
    assert secret.read_text() == "TOP-SECRET-TOKEN\n" and contents(tree) == before


@pytest.mark.parametrize("held", [False, True], ids=["stale", "live"])
def test_a_lock_is_read_only_as_a_pid_and_nothing_else_of_it_is_printed(tree, held):
    lock = tree / ".kvmlint-fix.lock"
    lock.write_bytes(b"\x1b]0;owned\x07TOP-SECRET-TOKEN\n")
    os.utime(lock, (0, 0))
    with open(lock, "rb") as holder:
        if held:
            fcntl.flock(holder, fcntl.LOCK_EX)
        done = kvmlint("fix", str(tree), hook="import kvmlint.codemods.transaction as t\nt.LOCK_WAIT_SECONDS = 0.3\n")
    assert "TOP-SECRET-TOKEN" not in done.stderr and "\x1b" not in done.stderr
    if held:
        assert one_line_refusal(done).startswith("kvmlint: another kvmlint fix is running (pid unknown)")
    else:
        assert "removed a stale fix lock of pid unknown" in done.stderr and done.returncode in (0, 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's file needs root")
@pytest.mark.parametrize("planted", ["lock", "journal"])
def test_a_lock_or_journal_of_another_user_is_refused_not_taken_over(tree, planted):
    path = tree / (".kvmlint-fix.lock" if planted == "lock" else ".kvmlint-journal")
    if planted == "lock":
        path.write_text("1\n")
        os.utime(path, (0, 0))
    else:
        path.mkdir()
    os.chown(path, 4242, 4242)
    before = contents(tree)
    done = kvmlint("fix", str(tree))
    assert "its owner is uid 4242" in one_line_refusal(done)
    assert contents(tree) == before


# A. A full disk at any step: one line, the tree as it was, no lock or journal left.

FULL_DISK = """
import errno, os
import kvmlint.codemods.transaction as transaction

def fills(name, creates=lambda *args, **options: True):
    real = getattr(os, name)
    def call(*args, **options):
        if armed and creates(*args, **options):
            calls[0] += 1
            if calls[0] >= FIRST_FAILING:  # and every one after: a full disk stays full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **options)
    setattr(os, name, call)

def armed_in(owner, name):
    real = getattr(owner, name)
    def call(*args, **options):
        global armed
        armed = True
        try:
            return real(*args, **options)
        finally:
            armed = False
    setattr(owner, name, call)

armed, calls = False, [0]
FIRST_FAILING = {first}
for name in ("write", "mkdir", "link"):
    fills(name)
fills("open", lambda path, flags, *rest, **options: flags & os.O_CREAT)
armed_in(transaction.FixLock, "__enter__")
armed_in(transaction, "commit")
"""


def test_a_full_disk_at_any_step_of_a_fix_leaves_the_tree_as_it_was(tmp_path, monkeypatch):
    """Every file-creating call of the lock and the write fails from the k-th on, for every k."""
    for name in ("a.c", "b.c"):
        (tmp_path / name).write_bytes(f"int {name[0]};\n".encode())
    change = ChangeSet(
        "KVM002", "move", "why", edits=[Edit("a.c", 0, 3, b"long"), Edit("b.c", 0, 3, b"long")],
        new_files=[NewFile("sub/d.h", b"long d;\n")],
    )
    before = contents(tmp_path)
    real = {name: getattr(os, name) for name in ("open", "write", "mkdir", "link")}
    calls = [0]
    first_failing = [None]

    def fills(name):
        def call(*args, **options):
            if name != "open" or args[1] & os.O_CREAT:
                calls[0] += 1
                if first_failing[0] is not None and calls[0] >= first_failing[0]:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real[name](*args, **options)
        return call

    def fix() -> list[str]:
        """What the user is told: the lock's refusal, or why the change set was not written."""
        calls[0] = 0
        with monkeypatch.context() as patched:
            for name in real:
                patched.setattr(os, name, fills(name))
            try:
                with transaction.FixLock(tmp_path):
                    assert transaction.recover(tmp_path) == []
                    report = write(plan(tmp_path, [change]))
            except UsageError as error:
                return [str(error)]
        return [why for _, why in report.skipped]

    assert fix() == [] and contents(tmp_path) != before
    steps = calls[0]
    assert steps >= 10  # the lock, the journal, two backups, a folder, three temporaries, a link
    for name in ("a.c", "b.c"):
        (tmp_path / name).write_bytes(f"int {name[0]};\n".encode())
    shutil.rmtree(tmp_path / "sub")
    before = contents(tmp_path)
    for first in range(1, steps + 1):
        first_failing[0] = first
        told = fix()
        assert len(told) == 1 and "No space left on device" in told[0], (first, told)
        assert contents(tmp_path) == before, first
        assert not leftovers(tmp_path), first


def test_a_full_disk_during_fix_is_said_in_one_line_and_the_tree_is_as_it_was(tree, tmp_path):
    counting = FULL_DISK.format(first=10**9) + "import atexit, sys\natexit.register(lambda: print('calls', calls[0], file=sys.stderr))\n"
    done = kvmlint("fix", "--rule", "irq0-override", shutil.copytree(tree, tmp_path / "counted"), hook=counting)
    steps = int(done.stderr.rsplit("calls ", 1)[1])
    before = contents(tree)
    for first in sorted({1, 2, 3, steps // 2, steps - 1, steps}):
        done = kvmlint("fix", "--rule", "irq0-override", str(tree), hook=FULL_DISK.format(first=first))
        lines = done.stderr.splitlines()
        # One line, or one per change set the run writes together (the move and KVM004's retype after it).
        assert 1 <= len(lines) <= 2 and all("No space left on device" in line for line in lines), (first, done.stderr)
        assert "internal error" not in done.stderr and done.returncode in (1, 2), (first, done.stderr)
        assert contents(tree) == before, first
        assert not leftovers(tree), first


# B. Files written where the user named a folder or the tree names a file: never through a tree's link.


@pytest.fixture
def committed(tree) -> Path:
    git("init", "-q", cwd=tree)
    git("add", "-A", cwd=tree)
    git("commit", "-qm", "base", cwd=tree)
    return tree


def series_names(tree: Path, scratch: Path) -> list[str]:
    done = kvmlint("fix", "--rule", "irq0-override", "--format-patch", scratch, str(tree))
    assert done.returncode in (0, 1), done.stderr
    return sorted(path.name for path in scratch.iterdir())


@pytest.mark.parametrize("planted", ["link-to-a-file", "dangling-link", "fifo", "folder"])
def test_format_patch_never_writes_through_what_the_tree_planted_in_the_folder(committed, tmp_path, planted):
    names = series_names(committed, tmp_path / "scratch")
    patches = committed / "patches"
    patches.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's\n")
    name = patches / names[-1]
    if planted == "link-to-a-file":
        name.symlink_to(victim)
    elif planted == "dangling-link":
        name.symlink_to(tmp_path / "created-outside")
    elif planted == "fifo":
        os.mkfifo(name)
    else:
        name.mkdir()
    done = kvmlint("fix", "--rule", "irq0-override", "--format-patch", "patches", ".", cwd=committed, timeout=30)
    assert "nothing written" in one_line_refusal(done)
    assert victim.read_text() == "the user's\n" and not (tmp_path / "created-outside").exists()
    assert [p.name for p in patches.iterdir()] == [name.name]


def test_format_patch_replaces_the_files_of_an_earlier_series(committed, tmp_path):
    names = series_names(committed, tmp_path / "patches")
    (tmp_path / "patches" / names[0]).write_text("an earlier series\n")
    done = kvmlint("fix", "--rule", "irq0-override", "--format-patch", tmp_path / "patches", str(committed))
    assert done.returncode in (0, 1), done.stderr
    assert sorted(p.name for p in (tmp_path / "patches").iterdir()) == names
    assert (tmp_path / "patches" / names[0]).read_text().startswith("From ")


@pytest.mark.parametrize("planted", ["link-in-the-tree", "fifo"])
def test_the_configurations_output_file_is_never_written_through_a_link_or_into_a_fifo(tree, planted):
    (tree / "kvmlint.toml").write_text('output-file = "report.txt"\n')
    report = tree / "report.txt"
    report.symlink_to("kvm-all.c") if planted == "link-in-the-tree" else os.mkfifo(report)
    before = contents(tree)
    done = kvmlint("check", str(tree), timeout=30)
    assert "nothing written" in one_line_refusal(done)
    assert contents(tree) == before


def test_an_output_file_the_user_names_is_written_through_its_link(tree, tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "report.txt").symlink_to(tmp_path / "reports" / "kvmlint.txt")
    done = kvmlint("check", "-o", tmp_path / "report.txt", str(tree))
    assert done.returncode == 1, done.stderr
    assert "KVM001" in (tmp_path / "reports" / "kvmlint.txt").read_text() and (tmp_path / "report.txt").is_symlink()


# A real full disk, where the system lets the tests mount a small tmpfs.


@pytest.fixture
def full_disk(tmp_path):
    """`full_disk(pages)`: a tmpfs at tmp_path/disk with `pages` pages free once `fill` is
    called, unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")

    def fill(pages: int) -> None:
        free = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\1" * (free.f_bavail * free.f_frsize - pages * free.f_frsize))

    yield disk, fill
    subprocess.run(["umount", str(disk)], check=True)


def test_a_series_that_does_not_fit_on_the_disk_is_one_line_and_writes_nothing(committed, full_disk):
    disk, fill = full_disk
    (disk / "patches").mkdir()
    fill(pages=1)
    done = kvmlint("fix", "--rule", "irq0-override", "--format-patch", disk / "patches", str(committed))
    assert "No space left on device" in one_line_refusal(done)
    assert list((disk / "patches").iterdir()) == []


def test_a_fix_on_a_full_disk_is_one_line_and_leaves_the_tree_as_it_was(full_disk):
    disk, fill = full_disk
    tree = Path(shutil.copytree(FIXTURES / "qemu-2012", disk / "tree"))
    before = contents(tree)
    fill(pages=3)  # the lock, the journal's record and one backup fit
    done = kvmlint("fix", "--rule", "irq0-override", str(tree))
    lines = done.stderr.splitlines()
    # One line per change set the run writes together (the move and KVM004's retype after it).
    assert len(lines) == 2 and all("No space left on device" in line for line in lines) and done.returncode == 1, done.stderr
    assert contents(tree) == before and not leftovers(tree)
