"""What the repository makes git read, and which repository git is sent to.

Each case plants, through the checkout's `.git` (its configuration, the files that
includes, the `.git` file of a linked work tree) or through settings of the user's
own configuration, something git would wait on, read without end or print in another
shape: a FIFO or /dev/zero included as configuration, /dev/zero as the file of a
setting git reads (diff.orderFile, core.attributesFile; a FIFO as core.excludesFile), grep's
line numbers, a `.git` file naming another repository or holding a NUL, a FIFO as a
`.gitignore` or `.gitattributes` of the work tree or as `.git/info/attributes`.  A case holds
when kvmlint answers within its time and memory limits, does its work or refuses in
one line, and writes into no repository but the tree's own.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostile_cases import crashed, fixture_tree, kvmlint
from hostile_cases._gitrepo import ISOLATED, checkout, git, user, verdict

NEW_PROXY = "\nint msi_irqchip_ready(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"
NEW_FINDING = "hw/msi.c:28:"
CALLER_OUTSIDE = "\nvoid kvmclock_pulse(KVMState *s)\n{\n    kvm_irqchip_set_irq(s, 0, 1);\n}\n"


def _run(folder: Path, *args: str, cwd: Path | None = None):
    """kvmlint under the case's CPU and memory limits, which git inherits."""
    return kvmlint(folder, *args, cwd=cwd or folder / "qemu", env=ISOLATED, limited=True)


def _refused_in_one_line(result, words: str) -> str | None:
    problem = crashed(result)
    if problem:
        return problem
    stderr = result.stderr.decode(errors="replace").strip()
    if result.returncode != 2 or len(stderr.splitlines()) != 1 or words not in stderr:
        return f"exit {result.returncode}, not one line saying {words!r}: {stderr[-300:]}"
    return None


def _staged_proxy(folder: Path) -> Path:
    """A checkout with a new proxy use staged in hw/msi.c (line 28)."""
    tree = checkout(folder)
    with open(tree / "hw" / "msi.c", "a") as source:
        source.write(NEW_PROXY)
    git(folder, tree, "add", "hw/msi.c")
    return tree


def _reports_the_staged_proxy(folder: Path) -> str | None:
    result = _run(folder, "check", "--staged", "--format", "concise", ".")
    problem = verdict(folder, result, allowed=(1,))
    if problem:
        return problem
    if not any(line.startswith(NEW_FINDING) for line in result.stdout.decode(errors="replace").splitlines()):
        return "check --staged did not report the staged proxy use"
    return None


def _included(folder: Path, target: str) -> Path:
    tree = checkout(folder)
    with open(tree / ".git" / "config", "a") as config:
        config.write(f"[includeIf \"gitdir:/\"]\n\tpath = {target}\n")
    return tree


def case_fifo_included_by_the_configuration(folder: Path) -> str | None:
    """`[include] path = planted.fifo` in .git/config: git would wait on the FIFO on every command."""
    tree = checkout(folder)
    os.mkfifo(tree / ".git" / "planted.fifo")
    with open(tree / ".git" / "config", "a") as config:
        config.write("[include]\n\tpath = planted.fifo\n")
    for arguments in (("check", "."), ("check", "--staged", "."), ("fix", "--commit", ".")):
        problem = _refused_in_one_line(_run(folder, *arguments), "planted.fifo")
        if problem:
            return f"{' '.join(arguments[:2])}: {problem}"
    return None


def case_dev_zero_included_by_the_configuration(folder: Path) -> str | None:
    """`[includeIf "gitdir:/"] path = /dev/zero`: git would read configuration without end."""
    _included(folder, "/dev/zero")
    return _refused_in_one_line(_run(folder, "check", "--staged", "."), "/dev/zero")


def case_fifo_as_the_repository_configuration(folder: Path) -> str | None:
    """.git/config itself a FIFO: git would wait on it before it finds the repository."""
    tree = checkout(folder)
    os.unlink(tree / ".git" / "config")
    os.mkfifo(tree / ".git" / "config")
    return _refused_in_one_line(_run(folder, "check", "--staged", "."), "config")


def case_order_file_of_dev_zero(folder: Path) -> str | None:
    """diff.orderFile=/dev/zero: every `git diff` would read /dev/zero into memory."""
    tree = _staged_proxy(folder)
    git(folder, tree, "config", "diff.orderFile", "/dev/zero")
    return _reports_the_staged_proxy(folder)


def case_attributes_file_of_dev_zero(folder: Path) -> str | None:
    """core.attributesFile=/dev/zero: the first diff would read it whole, as one line."""
    tree = _staged_proxy(folder)
    git(folder, tree, "config", "core.attributesFile", "/dev/zero")
    return _reports_the_staged_proxy(folder)


def case_excludes_file_a_fifo(folder: Path) -> str | None:
    """core.excludesFile names a FIFO: listing the untracked files would wait on it."""
    tree = _staged_proxy(folder)
    os.mkfifo(folder / "planted.fifo")
    git(folder, tree, "config", "core.excludesFile", str(folder / "planted.fifo"))
    problem = _reports_the_staged_proxy(folder)
    if problem:
        return problem
    return verdict(folder, _run(folder, "check", "."), allowed=(1,))


def _planted_fifo(folder: Path, place: str) -> str | None:
    tree = checkout(folder)
    planted = tree / place
    planted.parent.mkdir(parents=True, exist_ok=True)
    if planted.exists():
        planted.unlink()
    os.mkfifo(planted)
    for arguments in (("check", "."), ("check", "--staged", ".")):
        problem = _refused_in_one_line(_run(folder, *arguments), place)
        if problem:
            return f"{' '.join(arguments[:2])}: {problem}"
    return None


def case_gitignore_a_fifo(folder: Path) -> str | None:
    """hw/.gitignore is a FIFO: listing the untracked files would wait on it until git's timeout."""
    return _planted_fifo(folder, "hw/.gitignore")


def case_gitattributes_a_fifo_in_an_untracked_folder(folder: Path) -> str | None:
    """scratch/.gitattributes, in a folder git does not track, is a FIFO: every diff would wait on it."""
    return _planted_fifo(folder, "scratch/.gitattributes")


def case_info_attributes_a_fifo(folder: Path) -> str | None:
    """.git/info/attributes is a FIFO: every diff would wait on it."""
    return _planted_fifo(folder, ".git/info/attributes")


def case_grep_line_numbers_and_columns(folder: Path) -> str | None:
    """grep.lineNumber in the user's configuration, grep.column in the repository's: the sparse-checkout
    guard of fix --commit must still see a caller the checkout leaves out."""
    tree = checkout(folder)
    with open(tree / "hw" / "kvm" / "clock.c", "a") as caller:
        caller.write(CALLER_OUTSIDE)
    git(folder, tree, "commit", "-q", "-am", "hw/kvm/clock: Pulse an interrupt")
    git(folder, tree, "sparse-checkout", "set", "--no-cone", "/*", "!/hw/kvm/")
    user(folder, (folder / "home" / ".gitconfig").read_text() + "[grep]\n\tlineNumber = true\n")
    git(folder, tree, "config", "grep.column", "true")
    base = git(folder, tree, "rev-parse", "HEAD")
    problem = _refused_in_one_line(_run(folder, "fix", "--commit", "."), "hw/kvm/clock.c")
    if problem:
        return problem
    return None if git(folder, tree, "rev-parse", "HEAD") == base else "HEAD moved"


def case_git_file_naming_another_repository(folder: Path) -> str | None:
    """A `.git` file `gitdir: ../other/.git`, a repository that does not name this tree back:
    fix --commit would commit there."""
    other = checkout(folder)
    os.rename(other, folder / "other")
    other = folder / "other"
    tree = fixture_tree("qemu-2012", folder / "qemu")
    (tree / ".git").write_text("gitdir: ../other/.git\n")
    head = git(folder, other, "rev-parse", "HEAD")
    index = (other / ".git" / "index").read_bytes()
    problem = _refused_in_one_line(_run(folder, "fix", "--commit", "."), "does not name")
    if git(folder, other, "rev-parse", "HEAD") != head or (other / ".git" / "index").read_bytes() != index:
        return "the other repository's HEAD or index changed"
    return problem


def case_git_file_with_a_nul(folder: Path) -> str | None:
    """A `.git` file `gitdir: ab<NUL>cd`: every command that looks for the git directory reads it."""
    tree = fixture_tree("qemu-2012", folder / "qemu")
    (tree / ".git").write_bytes(b"gitdir: ab\0cd\n")
    for arguments, allowed in ((("fix", "--diff", "."), (0, 1)), (("check", "."), (1,)),
                               (("check", "--staged", "."), (2,)), (("fix", "--commit", "."), (2,))):
        result = _run(folder, *arguments)
        problem = crashed(result) or (None if result.returncode in allowed else
                                      f"exit {result.returncode}: {result.stderr.decode(errors='replace')[-300:]}")
        if problem:
            return f"{' '.join(arguments[:2])}: {problem}"
    return None


CASES = [
    case_fifo_included_by_the_configuration,
    case_dev_zero_included_by_the_configuration,
    case_fifo_as_the_repository_configuration,
    case_order_file_of_dev_zero,
    case_attributes_file_of_dev_zero,
    case_excludes_file_a_fifo,
    case_grep_line_numbers_and_columns,
    case_git_file_naming_another_repository,
    case_git_file_with_a_nul,
    case_gitignore_a_fifo,
    case_gitattributes_a_fifo_in_an_untracked_folder,
    case_info_attributes_a_fifo,
]
