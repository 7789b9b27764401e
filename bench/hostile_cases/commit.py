"""`fix --commit` records kvmlint's change of HEAD, all or nothing.

Each case makes the commit impossible or dishonest (no identity, a private edit git was
told to overlook, a sparse checkout hiding a caller, a locked branch or index, a failing
signature) and holds when kvmlint either commits exactly its own change or refuses,
leaving HEAD, the refs, the index and the work tree as they were.
"""

from __future__ import annotations

from pathlib import Path

from hostile_cases._gitrepo import changed, checkout, git, run, state, verdict

PRIVATE_EDIT = "/* a private edit, never to be committed */\n"
CALLER_OUTSIDE = "\nvoid kvmclock_pulse(KVMState *s)\n{\n    kvm_irqchip_set_irq(s, 0, 1);\n}\n"


def _refused(folder: Path, tree: Path, arguments: tuple[str, ...], words: str) -> str | None:
    """Run `arguments`; held when it exits 2 saying `words` and leaves everything as it was."""
    before = state(folder, tree)
    result = run(folder, *arguments)
    problem = verdict(folder, result, allowed=(2,))
    if problem:
        return problem
    stderr = result.stderr.decode(errors="replace")
    if words not in stderr:
        return f"refused without saying {words!r}: {stderr.strip()[-300:]}"
    difference = changed(before, state(folder, tree))
    return f"refused, but {difference}" if difference else None


def case_no_committer_identity(folder: Path) -> str | None:
    """user.useConfigOnly=true and no user.email: git cannot commit; fix --commit must say so before writing."""
    tree = checkout(folder, user_config="[user]\n\tuseConfigOnly = true\n\tname = Q. Developer\n")
    return _refused(folder, tree, ("fix", "--commit", "."), "set user.name and user.email")


def _private_edit(folder: Path, tree: Path, flag: str, path: str) -> None:
    git(folder, tree, "update-index", flag, path)
    with open(tree / path, "a") as private:
        private.write(PRIVATE_EDIT)


def case_assume_unchanged_private_edit(folder: Path) -> str | None:
    """kvm.h is marked assume-unchanged and holds a private edit; fix --commit and --format-patch."""
    tree = checkout(folder)
    _private_edit(folder, tree, "--assume-unchanged", "kvm.h")
    return (_refused(folder, tree, ("fix", "--commit", "."), "uncommitted changes in kvm.h")
            or _refused(folder, tree, ("fix", "--format-patch", str(folder / "out"), "."), "uncommitted changes in kvm.h"))


def case_skip_worktree_private_edit(folder: Path) -> str | None:
    """cpus.c is marked skip-worktree and holds a private edit; fix --commit."""
    tree = checkout(folder)
    _private_edit(folder, tree, "--skip-worktree", "cpus.c")
    return _refused(folder, tree, ("fix", "--commit", "."), "uncommitted changes in cpus.c")


def case_sparse_checkout_hides_a_caller(folder: Path) -> str | None:
    """hw/kvm/clock.c calls kvm_irqchip_set_irq() and a sparse checkout leaves hw/kvm/ out; KVM003 renames it."""
    tree = checkout(folder)
    with open(tree / "hw" / "kvm" / "clock.c", "a") as caller:
        caller.write(CALLER_OUTSIDE)
    git(folder, tree, "commit", "-q", "-am", "hw/kvm/clock: Pulse an interrupt")
    git(folder, tree, "sparse-checkout", "set", "--no-cone", "/*", "!/hw/kvm/")
    if (tree / "hw" / "kvm" / "clock.c").exists():
        return "the case itself failed: the sparse checkout kept hw/kvm/clock.c"
    return _refused(folder, tree, ("fix", "--commit", "."), "hw/kvm/clock.c")


def case_locked_branch(folder: Path) -> str | None:
    """refs/heads/master.lock exists: the branch cannot move once the fixes are written."""
    tree = checkout(folder)
    (tree / ".git" / "refs" / "heads" / "master.lock").write_text("")
    return _refused(folder, tree, ("fix", "--commit", "."), "fixes are undone")


def case_locked_index(folder: Path) -> str | None:
    """.git/index.lock exists: the branch moves, then the index cannot follow."""
    tree = checkout(folder)
    (tree / ".git" / "index.lock").write_text("")
    return _refused(folder, tree, ("fix", "--commit", "."), "fixes are undone")


def case_signing_fails(folder: Path) -> str | None:
    """fix --commit --gpg-sign with the user's own gpg.program failing: no commit can be made."""
    tree = checkout(folder, user_config="[user]\n\tname = Q. Developer\n\temail = dev@example.org\n"
                                        "[gpg]\n\tprogram = false\n")
    return _refused(folder, tree, ("fix", "--commit", "--gpg-sign", "."), "fixes are undone")


CASES = [
    case_no_committer_identity,
    case_assume_unchanged_private_edit,
    case_skip_worktree_private_edit,
    case_sparse_checkout_hides_a_caller,
    case_locked_branch,
    case_locked_index,
    case_signing_fails,
]
