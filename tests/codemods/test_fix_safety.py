"""`kvmlint fix` never loses or corrupts code: stale offsets, kills, concurrent runs, read-only
files and directories, a user's edit during the write, CRLF, owners and symlinks."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kvmlint.codemods import transaction
from kvmlint.codemods.engine import ChangeSet, Edit, NewFile, plan, write

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"


@pytest.fixture
def tree_2012(tmp_path):
    return Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "qemu"))


def program(hook: str) -> str:
    """Python that runs `kvmlint` from argv, after `hook` (to act at a chosen moment)."""
    return textwrap.dedent(hook) + "\nimport sys\nfrom kvmlint.cli import main\nsys.argv = ['kvmlint', *sys.argv[1:]]\nmain()\n"


def kvmlint(*args, hook: str = "", timeout: float = 120):
    return subprocess.run([sys.executable, "-c", program(hook), *args], capture_output=True, text=True, timeout=timeout)


def start_kvmlint(*args, hook: str = ""):
    return subprocess.Popen(
        [sys.executable, "-c", program(hook), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def digests(root: Path) -> dict[str, str]:
    """Every file and link under root (the git directory aside): its content, or where a link points."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative == ".git" or relative.startswith(".git/"):
            continue
        if path.is_symlink():
            found[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def git_init(root: Path) -> None:
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)


@pytest.fixture(scope="module")
def fixed_2012(tmp_path_factory) -> dict[str, str]:
    """The fixture tree after one undisturbed `kvmlint fix`."""
    root = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path_factory.mktemp("reference") / "qemu"))
    done = kvmlint("fix", str(root))
    assert done.returncode in (0, 1), done.stderr
    return digests(root)


def leftovers(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.name.endswith(transaction.TEMPORARY_SUFFIX)
        or any(part.endswith(("kvmlint-journal", "kvmlint-fix.lock")) for part in p.relative_to(root).parts)
    )


# 1. Stale offsets: edits only against the bytes the analysis parsed, under one lock.

EDIT_AFTER_ANALYSIS = """
import kvmlint.analysis
from pathlib import Path
analysed = kvmlint.analysis.analyse
def analyse_then_edit(sources, **options):
    result = analysed(sources, **options)
    path = sources.root / {path!r}
    path.write_bytes(b"/* a line the user added meanwhile */\\n" + path.read_bytes())
    return result
kvmlint.analysis.analyse = analyse_then_edit
"""


def test_a_file_edited_after_the_analysis_gets_no_edit_at_stale_offsets(tree_2012):
    done = kvmlint("fix", str(tree_2012), hook=EDIT_AFTER_ANALYSIS.format(path="kvm-all.c"))
    assert done.returncode == 1, done.stderr
    assert "kvm-all.c: changed on disk since it was analysed" in done.stderr
    edited = (tree_2012 / "kvm-all.c").read_bytes()
    original = (FIXTURES / "qemu-2012" / "kvm-all.c").read_bytes()
    assert edited == b"/* a line the user added meanwhile */\n" + original
    assert "internal error" not in done.stderr


def test_two_fix_runs_at_once_leave_the_tree_as_one_run_does(tmp_path, fixed_2012):
    for attempt in range(5):
        root = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / f"qemu{attempt}"))
        runs = [start_kvmlint("fix", "-j1", str(root)) for _ in range(2)]
        outputs = [run.communicate(timeout=120) for run in runs]
        assert [run.returncode for run in runs] in ([1, 0], [0, 1], [1, 1], [0, 0]), outputs
        assert digests(root) == fixed_2012, outputs
        assert not leftovers(root)


def test_a_second_run_waits_then_says_who_holds_the_lock(tree_2012):
    with transaction.FixLock(tree_2012):
        done = kvmlint(
            "fix", str(tree_2012), hook="import kvmlint.codemods.transaction as t\nt.LOCK_WAIT_SECONDS = 0.3\n"
        )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"kvmlint: another kvmlint fix is running (pid {os.getpid()})")
    assert (tree_2012 / "kvm-all.c").read_bytes() == (FIXTURES / "qemu-2012" / "kvm-all.c").read_bytes()


def test_a_lock_left_by_a_killed_run_is_taken_over_and_said(tree_2012, fixed_2012):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tree_2012 / ".kvmlint-fix.lock").write_text(f"{dead.pid}\n")
    done = kvmlint("fix", str(tree_2012))
    assert f"removed a stale fix lock of pid {dead.pid}" in done.stderr
    assert digests(tree_2012) == fixed_2012
    assert not leftovers(tree_2012)


def test_in_a_git_work_tree_the_lock_is_in_the_git_directory_out_of_git_status(tree_2012):
    git_init(tree_2012)
    hold = "import kvmlint.codemods.engine as e, subprocess, sys\n" + textwrap.dedent(
        """
        written = e.write
        def write_and_report_status(plan_):
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=plan_.root,
                                    capture_output=True, text=True).stdout
            print("status during the run:", repr(status), file=sys.stderr)
            print("locked:", (plan_.root / ".git" / "kvmlint-fix.lock").exists(), file=sys.stderr)
            return written(plan_)
        e.write = write_and_report_status
        """
    )
    done = kvmlint("fix", str(tree_2012), hook=hold)
    assert "status during the run: ''" in done.stderr and "locked: True" in done.stderr
    assert (tree_2012 / ".git" / "kvmlint-fix.lock").exists() is False


# 2. Multi-file change sets are all or nothing, also when killed.


# Each temporary file, or each rename, takes 20 ms: so that a kill lands between two of them.
SLOW = """
import time
import kvmlint.codemods.transaction as transaction
step = getattr(transaction, {step!r})
def slow_step(*args, **options):
    time.sleep(0.02)
    return step(*args, **options)
setattr(transaction, {step!r}, slow_step)
"""


def in_step(journal: Path, step: str) -> bool:
    if step == "_write_file":
        return journal.exists()
    try:
        return b'"renaming"' in (journal / "journal.json").read_bytes()
    except OSError:
        return False


def test_kill_9_in_the_write_phase_never_leaves_a_tree_the_next_run_cannot_repair(tmp_path, fixed_2012):
    original = digests(FIXTURES / "qemu-2012")
    rng = random.Random(11)
    half_written_runs = 0
    for attempt in range(12):
        root = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / f"qemu{attempt}"))
        journal = transaction.journal_dir(root)
        step = "_write_file" if attempt % 2 == 0 else "_rename"
        run = start_kvmlint("fix", "-j1", str(root), hook=SLOW.format(step=step))
        deadline = time.monotonic() + 60
        while not in_step(journal, step) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.2))
        run.send_signal(signal.SIGKILL)
        run.communicate()
        left = leftovers(root)  # the lock, the journal, temporary files: the next run's to clean
        killed_state = {path: digest for path, digest in digests(root).items() if path not in left}
        half_written = killed_state not in (original, fixed_2012)
        half_written_runs += half_written
        if half_written:
            assert journal.exists(), "a half-written tree without a journal cannot be repaired"
        again = kvmlint("fix", str(root))
        assert again.returncode in (0, 1), again.stderr
        assert digests(root) == fixed_2012, again.stderr
        assert not leftovers(root), again.stderr
        if half_written:
            assert "rolled back an interrupted fix" in again.stderr
    assert half_written_runs >= 2, "the kills should land among the renames"


def test_an_interrupted_change_set_is_rolled_back_by_the_next_run_which_says_so(tmp_path, monkeypatch):
    root = tmp_path
    for name in ("a.c", "b.c", "c.c"):
        (root / name).write_bytes(f"int {name[0]};\n".encode())
    change = ChangeSet(
        "KVM002", "move", "why",
        edits=[Edit(name, 0, 3, b"long") for name in ("a.c", "b.c", "c.c")],
        new_files=[NewFile("sub/d.h", b"long d;\n")],
    )
    renamed = transaction._rename
    calls = []

    def killed_at_the_third_rename(entry):
        calls.append(entry.path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would stop it: the journal stays
        renamed(entry)

    monkeypatch.setattr(transaction, "_rename", killed_at_the_third_rename)
    with pytest.raises(KeyboardInterrupt):
        write(plan(root, [change]))
    monkeypatch.undo()
    assert (root / "a.c").read_bytes() == b"long a;\n"  # half-written, for now
    messages = transaction.recover(root)
    assert messages == ["rolled back an interrupted fix: restored a.c, b.c", "removed 2 temporary file(s) of an interrupted fix"]
    assert {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()} == {
        "a.c": b"int a;\n", "b.c": b"int b;\n", "c.c": b"int c;\n"
    }
    assert not (root / "sub").exists() and not leftovers(root)


@pytest.fixture
def immutable():
    """`chattr +i` (root cannot write there either), undone after the test."""
    made = []

    def make(path: Path) -> None:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_target_directory_leaves_the_tree_exactly_as_it_was(tree_2012, immutable):
    before = digests(tree_2012)
    immutable(tree_2012 / "target-i386")
    done = kvmlint("fix", "--rule", "irq0-override", str(tree_2012))
    assert done.returncode == 1
    assert "target-i386 is a read-only folder; not written" in done.stderr  # known before anything is written
    assert digests(tree_2012) == before and not leftovers(tree_2012)


# 3. A user's edit during the write phase is kept.


def test_a_file_edited_during_the_write_is_not_overwritten_and_the_rest_is_rolled_back(tmp_path, monkeypatch):
    for name in ("a.c", "b.c"):
        (tmp_path / name).write_bytes(f"int {name[0]};\n".encode())
    change = ChangeSet("KVM002", "both", "why", edits=[Edit("a.c", 0, 3, b"long"), Edit("b.c", 0, 3, b"long")])
    planned = plan(tmp_path, [change])
    replace = os.replace

    def user_edits_b_meanwhile(source, destination):
        if Path(destination).name == "a.c":
            (tmp_path / "b.c").write_bytes(b"int b; /* the user's */\n")
        replace(source, destination)

    monkeypatch.setattr(os, "replace", user_edits_b_meanwhile)
    report = write(planned)
    assert (tmp_path / "b.c").read_bytes() == b"int b; /* the user's */\n"
    assert (tmp_path / "a.c").read_bytes() == b"int a;\n"
    assert report.written == [] and "b.c changed on disk during the write" in report.skipped[0][1]
    assert not leftovers(tmp_path)


# 4. Exit status and messages.

EDIT_WHEN_WRITING = """
import kvmlint.codemods.engine as engine
written = engine.write
def edit_then_write(plan_):
    path = plan_.root / {path!r}
    path.write_bytes(path.read_bytes() + b"/* the user's */\\n")
    return written(plan_)
engine.write = edit_then_write
"""


@pytest.mark.parametrize("unsafe", [[], ["--unsafe-fixes"]])
def test_a_skipped_change_set_exits_1_with_a_message(tree_2012, unsafe):
    done = kvmlint("fix", *unsafe, str(tree_2012), hook=EDIT_WHEN_WRITING.format(path="hw/pc_piix.c"))
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr
    assert "skipped: kvm: Move kvm_allows_irq0_override() to target-i386: hw/pc_piix.c changed on disk" in done.stderr
    assert "fixed: kvm: Move kvm_allows_irq0_override()" not in done.stdout
    pristine = FIXTURES / "qemu-2012"
    assert (tree_2012 / "kvm.h").read_bytes() == (pristine / "kvm.h").read_bytes()


# 5. Files are what they were.


def test_crlf_files_stay_crlf_and_keep_their_doc_comments(tree_2012):
    source = tree_2012 / "kvm-all.c"
    doc = b"/*\n * Whether the board may route IRQ0 to GSI 2.\n */\n"
    source.write_bytes(source.read_bytes().replace(b"\nint kvm_allows_irq0_override(void)\n", b"\n" + doc + b"int kvm_allows_irq0_override(void)\n"))
    for path in tree_2012.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    before = digests(tree_2012)
    done = kvmlint("fix", str(tree_2012))
    assert done.returncode in (0, 1), done.stderr
    changed = [p for p, digest in digests(tree_2012).items() if before.get(p) != digest]
    assert len(changed) >= 5
    for path in changed:
        data = (tree_2012 / path).read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n"), f"{path} has bare LF lines"
    moved = doc.replace(b"\n", b"\r\n") + b"bool kvm_allows_irq0_override(void)\r\n{"
    assert moved in (tree_2012 / "target-i386" / "kvm.c").read_bytes()
    assert b"IRQ0" not in (tree_2012 / "kvm-all.c").read_bytes()
    assert b"\r\nbool kvm_allows_irq0_override(void);\r\n" in (tree_2012 / "target-i386" / "kvm_i386.h").read_bytes()


def test_a_read_only_file_is_refused_not_replaced(tree_2012):
    os.chmod(tree_2012 / "kvm.h", 0o444)
    before = digests(tree_2012)
    done = kvmlint("fix", "--rule", "irq0-override", str(tree_2012))
    assert done.returncode == 1
    assert "kvm.h is read-only" in done.stderr
    assert digests(tree_2012) == before
    assert (tree_2012 / "kvm.h").stat().st_mode & 0o777 == 0o444


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_rewritten_files_keep_their_owner_and_group(tree_2012):
    for path in [tree_2012, *tree_2012.rglob("*")]:
        os.chown(path, 1234, 2345)
    done = kvmlint("fix", "--rule", "irq0-override", str(tree_2012))
    assert done.returncode == 0, done.stderr
    for name in ("kvm.h", "kvm-all.c", "target-i386/kvm.c", "target-i386/kvm_i386.h"):
        status = (tree_2012 / name).stat()
        assert (status.st_uid, status.st_gid) == (1234, 2345), name


def test_a_symlinked_file_is_written_through_its_link(tree_2012, fixed_2012):
    shared = tree_2012 / "shared"
    shared.mkdir()
    (tree_2012 / "kvm.h").rename(shared / "kvm.h")
    (tree_2012 / "kvm.h").symlink_to("shared/kvm.h")
    done = kvmlint("fix", str(tree_2012))
    assert done.returncode in (0, 1), done.stderr
    assert (tree_2012 / "kvm.h").is_symlink()
    assert (shared / "kvm.h").read_bytes() == (tree_2012 / "kvm.h").read_bytes()
    after = digests(tree_2012)
    assert after["shared/kvm.h"] == fixed_2012["kvm.h"]
