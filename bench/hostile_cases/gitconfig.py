"""The repository's git configuration names programs; no kvmlint command may let git run one.

Each case plants programs through the checkout's own configuration (`.git/config`, files
it includes, a submodule's configuration, hooks), runs every kvmlint command that reaches
that part of git, and holds when no planted program ran and the commands still did their
work.  The user's own configuration (`home/.gitconfig`) is theirs: a signature asked for
with `--gpg-sign` uses its signing program.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hostile_cases._gitrepo import checkout, git, planted, run, user, verdict

SIGNING_PROGRAMS = ("gpg.program", "gpg.openpgp.program", "gpg.x509.program", "gpg.ssh.program",
                    "gpg.ssh.defaultKeyCommand")
HOOKS = ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "post-rewrite", "pre-auto-gc",
         "reference-transaction", "post-index-change", "post-checkout", "post-merge", "fsmonitor-watchman")


def _make_stat_dirty(tree: Path) -> None:
    """Every C file gets a new mtime: git must read it again, through its filters."""
    for path in tree.rglob("*.[ch]"):
        if ".git" not in path.parts:
            os.utime(path, (1_000_000_000, 1_000_000_000))


def _build_dir(tree: Path) -> Path:
    """A build directory whose one unit's compiler is `true`, kept out of git's view."""
    build = tree / "build"
    build.mkdir()
    command = "true -c ../cpus.c -o cpus.o"
    (build / "compile_commands.json").write_text(
        json.dumps([{"directory": str(build), "file": str(tree / "cpus.c"), "command": command}]))
    with open(tree / ".git" / "info" / "exclude", "a") as exclude:
        exclude.write("build/\n")
    return build


def _each_command(folder: Path, tree: Path, commands: list[tuple[str, ...]], allowed=(0, 1)) -> str | None:
    for arguments in commands:
        problem = verdict(folder, run(folder, *arguments), allowed)
        if problem:
            return f"{' '.join(arguments[:2])}: {problem}"
    return None


def _commits_since(folder: Path, tree: Path, base: str) -> int:
    return int(git(folder, tree, "rev-list", "--count", f"{base}..HEAD").strip())


def case_signing_program_on_commit(folder: Path) -> str | None:
    """commit.gpgSign=true and every gpg.*program name a planted program; fix --commit."""
    tree = checkout(folder)
    git(folder, tree, "config", "commit.gpgSign", "true")
    git(folder, tree, "config", "tag.gpgSign", "true")
    for key in SIGNING_PROGRAMS:
        git(folder, tree, "config", key, planted(folder, key))
    base = git(folder, tree, "rev-parse", "HEAD").strip()
    problem = _each_command(folder, tree, [("fix", "--commit", ".")])
    if problem:
        return problem
    if _commits_since(folder, tree, base) == 0:
        return "fix --commit made no commit"
    if "\ngpgsig " in git(folder, tree, "cat-file", "commit", "HEAD"):
        return "a commit was signed, unasked"
    return None


def case_signature_display_on_format_patch(folder: Path) -> str | None:
    """log.showSignature=true, gpg.program planted, a signed commit touching the fixed files; fix --format-patch."""
    tree = checkout(folder)
    raw = git(folder, tree, "cat-file", "commit", "HEAD")
    header, message = raw.split("\n\n", 1)
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEEa2V2bWxpbnQ=\n -----END PGP SIGNATURE-----"
    signed = git(folder, tree, "hash-object", "-t", "commit", "-w", "--stdin",
                 input=f"{header}\n{signature}\n\n{message}".encode()).strip()
    git(folder, tree, "update-ref", "HEAD", signed)
    git(folder, tree, "config", "log.showSignature", "true")
    for key in SIGNING_PROGRAMS:
        git(folder, tree, "config", key, planted(folder, key))
    problem = _each_command(folder, tree, [("fix", "--format-patch", str(folder / "out"), ".")])
    if problem:
        return problem
    return None if list((folder / "out").glob("*.patch")) else "fix --format-patch wrote no patch"


def _with_filtering_submodule(folder: Path) -> Path:
    """The checkout with a submodule whose own configuration defines a clean filter for all its files."""
    user(folder)
    origin = folder / "sub-origin"
    origin.mkdir()
    git(folder, origin, "init", "-q", "-b", "master")
    (origin / ".gitattributes").write_text("* filter=planted\n")
    (origin / "data.txt").write_text("submodule data\n")
    git(folder, origin, "add", "-A")
    git(folder, origin, "commit", "-q", "-m", "sub")
    tree = checkout(folder)
    git(folder, tree, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(origin), "sub")
    git(folder, tree, "commit", "-q", "-m", "Add a submodule")
    git(folder, tree / "sub", "config", "filter.planted.clean", planted(folder, "submodule-clean-filter"))
    git(folder, tree / "sub", "config", "filter.planted.process", planted(folder, "submodule-process-filter"))
    os.utime(tree / "sub" / "data.txt", (1_000_000_000, 1_000_000_000))  # git must read it again
    return tree


def case_submodule_filter_on_clean_check(folder: Path) -> str | None:
    """A submodule's own config defines filter.planted.clean (`* filter=planted`); fix --format-patch, fix --commit."""
    tree = _with_filtering_submodule(folder)
    return _each_command(folder, tree, [("fix", "--format-patch", str(folder / "out"), "."), ("fix", "--commit", ".")])


def case_submodule_filter_in_build_check(folder: Path) -> str | None:
    """The same submodule; validate-build reads git status, fix --build-check compiles the fixes."""
    tree = _with_filtering_submodule(folder)
    _build_dir(tree)
    return _each_command(folder, tree, [("validate-build", "build"), ("fix", "--build-check", "build", ".")])


def case_filters_through_includes(folder: Path) -> str | None:
    """Clean filters and fsmonitor in files .git/config includes (include.path, includeIf gitdir:); every command."""
    tree = checkout(folder)
    (tree / ".gitattributes").write_text("*.c filter=included\n*.h filter=conditional\n")
    git(folder, tree, "add", ".gitattributes")
    git(folder, tree, "commit", "-q", "-m", "Attributes")
    _build_dir(tree)
    dot_git = tree / ".git"
    (dot_git / "included.config").write_text(
        f"[filter \"included\"]\n\tclean = {planted(folder, 'included-clean')}\n\trequired = true\n")
    (dot_git / "conditional.config").write_text(
        f"[filter \"conditional\"]\n\tclean = {planted(folder, 'conditional-clean')}\n"
        f"\tprocess = {planted(folder, 'conditional-process')}\n"
        f"[core]\n\tfsmonitor = {planted(folder, 'conditional-fsmonitor')}\n")
    with open(dot_git / "config", "a") as config:
        config.write(f"[include]\n\tpath = included.config\n[includeIf \"gitdir:{dot_git}\"]\n\tpath = conditional.config\n")
    _make_stat_dirty(tree)
    return _each_command(folder, tree, [
        ("check", "."), ("check", "--diff-base", "HEAD", "."), ("check", "--staged", "."), ("validate-build", "build"),
        ("fix", "--format-patch", str(folder / "out"), "."), ("fix", "--commit", "."),
    ])


def case_filter_named_with_an_equals_sign(folder: Path) -> str | None:
    """A clean filter named `x=y` (`-c filter.x=y.clean=` would set filter.x instead); every command."""
    tree = checkout(folder)
    (tree / ".gitattributes").write_text("* filter=x=y\n")
    git(folder, tree, "add", ".gitattributes")
    git(folder, tree, "commit", "-q", "-m", "Attributes")
    _build_dir(tree)
    git(folder, tree, "config", "filter.x=y.clean", planted(folder, "equals-clean"))
    git(folder, tree, "config", "filter.x=y.process", planted(folder, "equals-process"))
    _make_stat_dirty(tree)
    return _each_command(folder, tree, [
        ("check", "."), ("check", "--diff-base", "HEAD", "."), ("validate-build", "build"),
        ("fix", "--format-patch", str(folder / "out"), "."), ("fix", "--commit", "."),
    ])


def case_hooks(folder: Path) -> str | None:
    """Every hook git runs around commits, refs and the index, in .git/hooks and in core.hooksPath; fix --commit."""
    tree = checkout(folder)
    hooks_path = tree / ".git" / "planted-hooks"
    hooks_path.mkdir()
    for name in HOOKS:
        for directory in (tree / ".git" / "hooks", hooks_path):
            hook = directory / name
            hook.write_text(f"#!/bin/sh\nexec {planted(folder, 'hook-' + name)} \"$@\"\n")
            hook.chmod(0o755)
    base = git(folder, tree, "rev-parse", "HEAD").strip()
    (folder / "ran").unlink(missing_ok=True)
    problem = _each_command(folder, tree, [("fix", "--format-patch", str(folder / "out"), "."), ("fix", "--commit", ".")])
    if problem:
        return problem
    git(folder, tree, "config", "core.hooksPath", str(hooks_path))
    git(folder, tree, "-c", f"core.hooksPath={os.devnull}", "reset", "-q", "--hard", base)
    problem = _each_command(folder, tree, [("fix", "--commit", ".")])
    if problem:
        return "with core.hooksPath: " + problem
    return None if _commits_since(folder, tree, base) else "fix --commit made no commit"


def case_programs_on_every_command(folder: Path) -> str | None:
    """fsmonitor, external diff, textconv, diff command, pagers, editors, credential, ssh, askpass, aliases; every command."""
    tree = checkout(folder)
    (tree / ".gitattributes").write_text("* diff=planted\n")
    git(folder, tree, "add", ".gitattributes")
    git(folder, tree, "commit", "-q", "-m", "Attributes")
    _build_dir(tree)
    settings = {
        "core.fsmonitor": "fsmonitor", "diff.external": "external-diff", "diff.planted.textconv": "textconv",
        "diff.planted.command": "diff-command", "core.pager": "pager", "pager.log": "log-pager",
        "pager.status": "status-pager", "pager.diff": "diff-pager", "core.editor": "editor",
        "sequence.editor": "sequence-editor", "credential.helper": "credential-helper", "core.askPass": "askpass",
        "core.sshCommand": "ssh", "core.alternateRefsCommand": "alternate-refs",
        "interactive.diffFilter": "diff-filter",
    }
    for key, name in settings.items():
        git(folder, tree, "config", key, planted(folder, name))
    for command in ("status", "log", "diff", "ls-files", "rev-parse", "cat-file", "config", "var", "commit-tree",
                    "update-ref", "read-tree", "write-tree", "hash-object", "update-index", "ls-tree", "grep"):
        git(folder, tree, "config", f"alias.{command}", "!" + planted(folder, f"alias-{command}"))
    git(folder, tree, "config", "gc.auto", "1")
    (folder / "ran").unlink(missing_ok=True)  # the set-up's own git ran some just now
    problem = _each_command(folder, tree, [
        ("fix", "--format-patch", str(folder / "out"), "."), ("fix", "--commit", "."),
    ])
    if problem:
        return problem
    with open(tree / "hw" / "msi.c", "a") as source:
        source.write("\nint msi_irqchip_ready(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n")
    git(folder, tree, "-c", "core.fsmonitor=false", "add", "hw/msi.c")
    (folder / "ran").unlink(missing_ok=True)
    return _each_command(folder, tree, [
        ("check", "."), ("check", "--staged", "."), ("check", "--diff-base", "HEAD~1", "."),
        ("validate-build", "build"),
    ])


def case_lazy_fetch_from_promisor_remotes(folder: Path) -> str | None:
    """A partial clone missing a blob: promisor remotes with a planted upload-pack, ssh command and ext:: transport."""
    tree = checkout(folder)
    _build_dir(tree)
    with open(tree / "cpus.c", "a") as source:
        source.write("\nint cpus_irqchip_ready(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n")
    git(folder, tree, "add", "cpus.c")
    blob = git(folder, tree, "rev-parse", "HEAD:cpus.c").strip()
    (tree / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    for key, value in {
        "core.repositoryFormatVersion": "1", "extensions.partialClone": "origin",
        "remote.origin.url": str(elsewhere), "remote.origin.uploadpack": planted(folder, "upload-pack"),
        "remote.ssh.url": "ssh://example.invalid/qemu", "remote.ssh.promisor": "true",
        "core.sshCommand": planted(folder, "ssh"),
        "remote.ext.url": f"ext::{planted(folder, 'ext-transport')} %S", "remote.ext.promisor": "true",
        "protocol.allow": "always", "protocol.ext.allow": "always", "protocol.file.allow": "always",
    }.items():
        git(folder, tree, "config", key, value)
    return _each_command(folder, tree, [
        ("check", "--staged", "."), ("check", "--diff-base", "HEAD", "."), ("validate-build", "build", "cpus.c"),
    ], allowed=(0, 1, 2))


def case_asked_signature_uses_the_users_program(folder: Path) -> str | None:
    """fix --commit --gpg-sign: the repository's gpg.program is planted, the user's global one signs."""
    signer = folder / "user-signer"
    signer.write_text(
        "#!/bin/sh\ncat >/dev/null\n"
        f"echo signed >> '{folder / 'user-signed'}'\n"
        "printf '\\n[GNUPG:] SIG_CREATED D 1 8 00 0 0\\n' >&2\n"
        "printf -- '-----BEGIN PGP SIGNATURE-----\\n\\na2V2bWxpbnQ=\\n-----END PGP SIGNATURE-----\\n'\n")
    signer.chmod(0o755)
    tree = checkout(folder, user_config=f"[user]\n\tname = Q. Developer\n\temail = dev@example.org\n"
                                         f"[gpg]\n\tprogram = {signer}\n")
    for key in SIGNING_PROGRAMS:
        git(folder, tree, "config", key, planted(folder, key))
    git(folder, tree, "config", "gpg.format", "openpgp")
    problem = _each_command(folder, tree, [("fix", "--commit", "--gpg-sign", ".")])
    if problem:
        return problem
    if "\ngpgsig " not in git(folder, tree, "cat-file", "commit", "HEAD"):
        return "the commits are not signed"
    return None if (folder / "user-signed").exists() else "the user's own signing program did not run"


CASES = [
    case_signing_program_on_commit,
    case_signature_display_on_format_patch,
    case_submodule_filter_on_clean_check,
    case_submodule_filter_in_build_check,
    case_filters_through_includes,
    case_filter_named_with_an_equals_sign,
    case_hooks,
    case_programs_on_every_command,
    case_lazy_fetch_from_promisor_remotes,
    case_asked_signature_uses_the_users_program,
]
