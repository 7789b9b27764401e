"""The tree ships a `.kvmlint-journal/` (or a `.git` file) that `fix` would act on as its own.

In a tree without git, `fix` keeps its journal at the root, and the next
`fix` finishes what a killed run left there: deletes temporary files, rolls
renames back, removes folders it made.  A planted journal names files
outside the tree, backups outside the journal, a FIFO, a record that never
ends; a `.git` file sends the journal elsewhere.  kvmlint holds when it
refuses such a journal in one line (exit 2) and touches nothing.

A journal is acted on only when this user's kvmlint sealed it, so the cases
that test what a record may name seal theirs with the key of the case's own
home (`_plant`), as only kvmlint itself could; the forgery cases plant one
unsealed, sealed with another key, or sealed for another tree's journal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from hostile_cases import crashed, fixture_tree, kvmlint
from hostile_cases._full_disk import full_disk_environment

TEMPORARY_SUFFIX = ".kvmlint-tmp"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(tree: Path, name: str, old: bytes | None, new: bytes | None, backup: str | None = "0.orig", **fields) -> dict:
    """A journal entry as kvmlint writes it for `tree/name`, with `fields` replaced."""
    target = os.path.join(os.path.realpath(tree), name)
    directory, base = os.path.split(target)
    return {"path": name, "target": target, "temporary": os.path.join(directory, f".{base}.1{TEMPORARY_SUFFIX}"),
            "old_sha256": None if old is None else _digest(old), "new_sha256": None if new is None else _digest(new),
            "backup": backup, **fields}


def _sealed(tree: Path, journal: Path, body: bytes, key: bytes | None = None) -> bytes:
    """`body` sealed for `journal` as kvmlint seals a record, with `key` or the key of the home
    kvmlint() gives the case (the case's folder holds the tree); unsealed for a kvmlint that
    does not seal (one from before the seal, run to see the cases fail)."""
    from kvmlint import store
    from kvmlint.codemods import transaction

    if not hasattr(transaction, "_seal"):
        return body
    if key is None:
        saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = str(tree.parent / "home" / ".cache")
        try:
            key = store.user_key()
        finally:
            os.environ.pop("XDG_CACHE_HOME") if saved is None else os.environ.update(XDG_CACHE_HOME=saved)
    seal = transaction._seal(key, journal, body)
    return b"%s %d %s\n%s" % (transaction.JOURNAL_MAGIC, transaction.JOURNAL_FORMAT, seal.encode(), body)


def _plant(tree: Path, record, files: dict[str, bytes] | None = None, seal=_sealed) -> Path:
    """A journal in `tree` holding `record` (sealed by `seal(tree, journal, body)`) and `files`."""
    journal = tree / ".kvmlint-journal"
    journal.mkdir()
    body = (record if isinstance(record, str) else json.dumps(record)).encode()
    (journal / "journal.json").write_bytes(seal(tree, journal, body))
    for name, data in (files or {}).items():
        (journal / name).write_bytes(data)
    return journal


def _refused(result: subprocess.CompletedProcess) -> str | None:
    """None when kvmlint stopped with one clean line (exit 2), else what it did instead."""
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    if crashed(result):
        return crashed(result)
    if result.returncode != 2 or len(lines) != 1:
        return f"exit status {result.returncode}, not a one-line refusal: {' | '.join(lines)[:160]}"
    return None


def _listing(folder: Path, mtimes: bool = True) -> dict[str, object]:
    """Every name under `folder` with its bytes; a folder with its mtime (which any file made
    and removed in it changes), unless `mtimes` is False."""
    found = {".": folder.lstat().st_mtime_ns if mtimes else "folder"}
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            found[str(path)] = path.lstat().st_mtime_ns if mtimes else "folder"
        else:
            found[str(path)] = path.read_bytes() if path.is_file() and not path.is_symlink() else "other"
    return found


def case_temporary_outside_the_tree(folder: Path) -> str | None:
    """A journal's temporary file is `../victim/precious.txt` (relative to where fix runs)."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    victim = folder / "victim" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("precious\n")
    _plant(tree, {"state": "preparing", "created_dirs": [],
                  "entries": [_entry(tree, "x.c", None, b"x", backup=None, temporary="../victim/precious.txt")]})
    result = kvmlint(folder, "fix", ".", cwd=tree)
    if not victim.exists():
        return "fix deleted a file outside the tree the journal named as its temporary"
    return _refused(result)


def case_temporary_is_a_file_of_the_tree(folder: Path) -> str | None:
    """A journal's temporary file is kvm-all.c itself."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    source = (tree / "kvm-all.c").read_bytes()
    _plant(tree, {"state": "preparing", "created_dirs": [], "entries": [
        _entry(tree, "x.c", None, b"x", backup=None, temporary=os.path.join(os.path.realpath(tree), "kvm-all.c"))]})
    result = kvmlint(folder, "fix", str(tree))
    if not (tree / "kvm-all.c").exists() or (tree / "kvm-all.c").read_bytes() != source:
        return "fix deleted kvm-all.c, named as a temporary file by the journal"
    return _refused(result)


def _roll_back_outside(folder: Path, target: str) -> str | None:
    tree = fixture_tree("qemu-2012", folder / "tree")
    (folder / "outside").mkdir()
    (tree / "escape").symlink_to(folder / "outside")
    source = (tree / "kvm-all.c").read_bytes()
    planted = _entry(tree, "x.sh", b"old", None, target=target.format(folder=folder, tree=os.path.realpath(tree)))
    planted["temporary"] = os.path.join(os.path.dirname(planted["target"]), f".x.sh.1{TEMPORARY_SUFFIX}")
    _plant(tree, {"state": "renaming", "created_dirs": [],
                  "entries": [planted, _entry(tree, "kvm-all.c", source, b"other", backup="1.orig")]},
           {"0.orig": b"#!/bin/sh\necho pwned\n", "1.orig": source})
    result = kvmlint(folder, "fix", ".", cwd=tree)
    written = [str(p.relative_to(folder)) for place in (folder, folder / "outside") for p in place.glob("x.sh*")]
    if written:
        return f"the roll-back wrote the journal's bytes outside the tree: {', '.join(written)}"
    return _refused(result)


def case_roll_back_to_a_path_outside(folder: Path) -> str | None:
    """A "renaming" journal rolls back `../x.sh` from a planted backup."""
    return _roll_back_outside(folder, "../x.sh")


def case_roll_back_through_a_linked_folder(folder: Path) -> str | None:
    """A "renaming" journal rolls back `escape/x.sh`, escape/ a link out of the tree."""
    return _roll_back_outside(folder, "{tree}/escape/x.sh")


def case_backup_outside_the_journal(folder: Path) -> str | None:
    """A journal's backup is `../../victim.txt`: kept beside an edited file, it would be moved into the tree."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    victim = folder / "victim.txt"
    victim.write_text("the user's\n")
    _plant(tree, {"state": "renaming", "created_dirs": [],
                  "entries": [_entry(tree, "kvm-all.c", b"old", b"new", backup="../../victim.txt")]})
    result = kvmlint(folder, "fix", str(tree))
    if not victim.exists():
        return "fix moved a file outside the tree into it, named as a backup by the journal"
    return _refused(result)


def case_journal_is_a_link_out_of_the_tree(folder: Path) -> str | None:
    """`.kvmlint-journal` is a symlink to a folder outside the tree (`ln -s ../outside`)."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    outside = folder / "outside"
    outside.mkdir()
    for name in ("a.txt", "b.txt"):
        (outside / name).write_text(name)
    (tree / ".kvmlint-journal").symlink_to("../outside")
    before = _listing(outside)
    result = kvmlint(folder, "fix", str(tree))
    if _listing(outside) != before:
        return "fix removed the files of the folder the journal links to"
    return _refused(result)


def case_created_folder_outside_the_tree(folder: Path) -> str | None:
    """A journal's created folders name an empty folder outside the tree."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    (folder / "empty").mkdir()
    _plant(tree, {"state": "preparing", "entries": [], "created_dirs": [str(folder / "empty")]})
    result = kvmlint(folder, "fix", str(tree))
    if not (folder / "empty").is_dir():
        return "fix removed a folder outside the tree the journal named as one it created"
    return _refused(result)


def case_git_file_sends_the_journal_elsewhere(folder: Path) -> str | None:
    """A `.git` file says `gitdir: <a folder outside the tree>`: lock, journal and backups would go there."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    (tree / ".git").write_text(f"gitdir: {elsewhere}\n")
    before = _listing(elsewhere)
    result = kvmlint(folder, "fix", str(tree))
    if _listing(elsewhere) != before:
        return "fix kept its lock, journal and backups in the folder a .git file named"
    if crashed(result) or result.returncode not in (0, 1) or b"file(s) written" not in result.stdout:
        return crashed(result) or f"fix did not run (exit status {result.returncode})"
    return None


def _unbounded_record(folder: Path, make) -> str | None:
    tree = fixture_tree("qemu-2012", folder / "tree")
    journal = tree / ".kvmlint-journal"
    journal.mkdir()
    make(journal / "journal.json")
    return _refused(kvmlint(folder, "fix", str(tree)))


def case_record_of_3_gib(folder: Path) -> str | None:
    """The journal's record is a sparse file of 3 GiB."""
    def make(path: Path) -> None:
        with open(path, "wb") as stream:
            stream.truncate(3 << 30)
    return _unbounded_record(folder, make)


def case_record_is_dev_zero(folder: Path) -> str | None:
    """The journal's record is a symlink to /dev/zero."""
    return _unbounded_record(folder, lambda path: path.symlink_to("/dev/zero"))


def case_record_is_a_fifo(folder: Path) -> str | None:
    """The journal's record is a FIFO nobody writes."""
    return _unbounded_record(folder, os.mkfifo)


def case_target_is_a_fifo(folder: Path) -> str | None:
    """A "renaming" journal names a FIFO of the tree as a file it wrote."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    os.mkfifo(tree / "hw" / "trap.c")
    source = (tree / "kvm-all.c").read_bytes()
    _plant(tree, {"state": "renaming", "created_dirs": [], "entries": [
        _entry(tree, "hw/trap.c", b"old", b"new"), _entry(tree, "kvm-all.c", source, b"x", backup="1.orig")]},
        {"0.orig": b"old", "1.orig": source})
    return _refused(kvmlint(folder, "fix", str(tree)))


def case_fields_of_the_wrong_type(folder: Path) -> str | None:
    """A journal whose entries are a string, and one whose new digest is null."""
    for record in ({"state": "renaming", "entries": "x", "created_dirs": []},
                   {"state": "renaming", "created_dirs": [], "entries": [_entry(folder / "tree", "kvm-all.c", b"o", None)]}):
        tree = fixture_tree("qemu-2012", folder / "tree")
        _plant(tree, record, {"0.orig": b"o"})
        problem = _refused(kvmlint(folder, "fix", str(tree)))
        if problem:
            return problem
        shutil.rmtree(tree)
    return None


def case_path_with_terminal_escapes(folder: Path) -> str | None:
    """A journal entry's path holds terminal escapes, which fix's messages would print."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    _plant(tree, {"state": "renaming", "created_dirs": [],
                  "entries": [_entry(tree, "kvm-all.c", b"old", b"new", path="\x1b]0;owned\x07kvm-all.c")]},
           {"0.orig": b"old"})
    result = kvmlint(folder, "fix", str(tree))
    if b"\x1b" in result.stderr + result.stdout:
        return "fix printed the journal's terminal escapes"
    return _refused(result)


def case_kept_old_content_over_a_file(folder: Path) -> str | None:
    """An edited file's old content would be kept as `F.kvmlint-orig`, which already holds an earlier one."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    kept = tree / "hw" / "msi.c.kvmlint-orig"
    kept.write_text("old content kept by an earlier interrupted fix\n")
    _plant(tree, {"state": "renaming", "created_dirs": [], "entries": [_entry(tree, "hw/msi.c", b"old\n", b"new\n")]},
           {"0.orig": b"old\n"})
    result = kvmlint(folder, "fix", str(tree))
    if kept.read_text() != "old content kept by an earlier interrupted fix\n":
        return "recovery overwrote the old content an earlier interrupted fix had kept"
    return crashed(result)


def case_full_disk_while_writing(folder: Path) -> str | None:
    """The disk fills up when the change set's first new file is linked into place (the roll-back needs no space)."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    before = _listing(tree, mtimes=False)
    result = kvmlint(folder, "fix", "--no-cache", "--rule", "irq0-override", str(tree),
                     env=full_disk_environment(folder, 1, counted=("link",)))
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    if crashed(result):
        return crashed(result)
    # One line per change set (the move, then its retype), each naming the full disk.
    if not lines or any("No space left on device" not in line for line in lines):
        return f"not one line per change set: {' | '.join(lines)[:160]}"
    if _listing(tree, mtimes=False) != before:
        return "the tree is not as it was (or a journal or temporary file was left)"
    return None


PAYLOAD = b"/* never reviewed */\nint planted;\n"


def _forged(folder: Path, seal, old: bytes = PAYLOAD) -> str | None:
    """A "renaming" journal of kvmlint's shape: hw/pc.c "renamed" (its new digest is the file as
    shipped) with a planted backup recorded as its old content `old`, and a second entry not yet
    renamed, so that finishing it writes the backup's bytes over hw/pc.c."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    shipped = (tree / "hw" / "pc.c").read_bytes()
    _plant(tree, {"state": "renaming", "created_dirs": [], "entries": [
        _entry(tree, "hw/pc.c", old, shipped), _entry(tree, "hw/zz.c", None, b"zz", backup=None)]},
        {"0.orig": PAYLOAD}, seal=seal)
    before = _listing(tree, mtimes=False)
    result = kvmlint(folder, "fix", "--select", "KVM003", str(tree))
    if b"planted" in (tree / "hw" / "pc.c").read_bytes():
        return "fix wrote the planted backup over hw/pc.c"
    if _listing(tree, mtimes=False) != before:
        return "fix changed the tree while refusing the journal"
    return _refused(result)


def case_unsealed_journal(folder: Path) -> str | None:
    """A well-formed journal with no seal (as kvmlint 0.1 wrote them) rolls hw/pc.c back to its planted backup."""
    return _forged(folder, lambda tree, journal, body: body)


def case_journal_sealed_with_another_key(folder: Path) -> str | None:
    """The same journal sealed with a key of the tree's choosing."""
    return _forged(folder, lambda tree, journal, body: _sealed(tree, journal, body, key=b"\x2a" * 32))


def case_journal_sealed_for_another_tree(folder: Path) -> str | None:
    """The same journal sealed by this user's kvmlint for another tree's journal folder, copied here."""
    return _forged(folder, lambda tree, journal, body: _sealed(tree, folder / "other" / journal.name, body))


def case_sealed_journal_with_a_swapped_backup(folder: Path) -> str | None:
    """A journal this user's kvmlint sealed, whose backup no longer holds the old content it records."""
    return _forged(folder, _sealed, old=b"the old content\n")


CASES = [
    case_temporary_outside_the_tree,
    case_temporary_is_a_file_of_the_tree,
    case_roll_back_to_a_path_outside,
    case_roll_back_through_a_linked_folder,
    case_backup_outside_the_journal,
    case_journal_is_a_link_out_of_the_tree,
    case_created_folder_outside_the_tree,
    case_git_file_sends_the_journal_elsewhere,
    case_record_of_3_gib,
    case_record_is_dev_zero,
    case_record_is_a_fifo,
    case_target_is_a_fifo,
    case_fields_of_the_wrong_type,
    case_path_with_terminal_escapes,
    case_kept_old_content_over_a_file,
    case_full_disk_while_writing,
    case_unsealed_journal,
    case_journal_sealed_with_another_key,
    case_journal_sealed_for_another_tree,
    case_sealed_journal_with_a_swapped_backup,
]
