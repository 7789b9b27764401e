"""`kvmlint fix`: apply the safe fixes, as a diff, a patch series or commits, optionally proven by compiling."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kvmlint import rules
from kvmlint.cli.output import EXIT_FINDINGS, echo, out, split_words, stderr, warn
from kvmlint.cli.validate_build import FULL_COMPILE_HELP, front_end_note, report_database_warnings, report_never_built
from kvmlint.errors import UsageError
from kvmlint.terminal import for_terminal


@click.command()
@click.argument("path", required=False, default=".", type=click.Path())
@click.option("--rule", "rule_words", multiple=True, help="Only this rule's fixes (code, name or alias; repeatable).")
@click.option("--select", "selected", multiple=True, help="Rules to fix, as on check (codes, names or aliases; comma-separated).")
@click.option("--ignore", "ignored", multiple=True, help="Rules not to fix.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff and write nothing.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes the model cannot prove safe.")
@click.option("--format-patch", "patch_dir", type=click.Path(file_okay=False), help="Write a mail-ready patch series to this directory instead.")
@click.option("--commit", "commit_each", is_flag=True, help="Record each change set as its own git commit, with the patch's message.")
@click.option("--signoff", "-s", is_flag=True, help="With --commit: add your Signed-off-by, as `git commit -s` does.")
@click.option("--gpg-sign", "-S", "gpg_sign", is_flag=True, help="With --commit: sign each commit (as your own commit.gpgSign=true does), with the signing program your global or system git configuration names; a repository's own is never run.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Parser processes [default: CPU count].")
@click.option("--era", type=click.Choice(["2012", "current"]), default=None, help="Model era [default: inferred from the tree].")
@click.option("--build-check", "build_dirs", multiple=True, type=click.Path(file_okay=False), help="Recompile what each fix touches with this configured build's compile_commands.json (repeatable: e.g. with and without KVM); roll back fixes that do not compile.")
@click.option("--full-compile", is_flag=True, help=FULL_COMPILE_HELP)
@click.option("--no-cache", is_flag=True, help="Parse every file again; neither read nor write .kvmlint_cache/ (or $KVMLINT_CACHE_DIR).")
def fix(
    path, rule_words, selected, ignored, show_diff, unsafe_fixes, patch_dir, commit_each, signoff, gpg_sign, jobs,
    era, build_dirs, full_compile, no_cache,
) -> None:
    """Apply fixes to the QEMU tree at PATH (default: .): every safe fix, or one rule's.

    PATH may also be FILE:LINE, to fix only the finding at that line.  A file or
    subdirectory PATH limits the fixes to findings there; the whole checkout is
    still read, as a fix spans files."""
    from pathlib import Path

    from kvmlint.analysis import analyse, run_rules
    from kvmlint.cli.config import load_config
    from kvmlint.codemods import propose_changes
    from kvmlint.codemods.engine import plan, unified_diff, write
    from kvmlint.codemods.transaction import FixLock, pending_journal, recover
    from kvmlint.codemods.tree import reading_as_analysed
    from kvmlint.git.commits import require_clean, require_committed, require_identity, require_whole_checkout, wants_signature
    from kvmlint.reporters.patches import write_series
    from kvmlint.source.discover import C_SUFFIXES, PYTHON_SUFFIXES, discover, find_root, is_excluded
    from kvmlint.store import Store
    from kvmlint.validation.model_check import validate_plan
    from kvmlint.validation.outcome import findings_without_fix, still_changed

    if sum(map(bool, (show_diff, patch_dir, commit_each))) > 1:
        raise UsageError("--diff, --format-patch and --commit cannot be combined")
    if signoff and not commit_each:
        raise UsageError("--signoff goes with --commit (a patch series gets its sign-off from `git am -s`)")
    if gpg_sign and not commit_each:
        raise UsageError("--gpg-sign goes with --commit")
    if build_dirs and (show_diff or patch_dir):
        raise UsageError("--build-check compiles the fixes it writes: it cannot be combined with --diff or --format-patch")
    if full_compile and not build_dirs:
        raise UsageError("--full-compile goes with --build-check")
    path, location = _fix_location(path)
    if not Path(path).exists():
        raise UsageError(f"{path}: no such file or directory")
    wanted = Path(path).resolve()
    root = find_root(wanted)
    config = load_config(root)  # the rules, paths and files check would judge
    selections = rules.select(
        split_words(rule_words + selected) or list(config.select), split_words(ignored) or list(config.ignore),
        [] if rule_words or selected else list(config.extend_select),
    )
    # The whole checkout is read as check reads it (so check's JSON and SARIF carry what this writes), excluded
    # files too: a fix that spans files (a move, a rename) must edit them.
    named = str(Path(path) / location[0]) if location is not None else path
    sources = discover([named], suffixes=C_SUFFIXES + PYTHON_SUFFIXES, whole_tree=True)
    base_commit = committer = None
    purpose = "--format-patch" if patch_dir else "--commit"
    if patch_dir or commit_each:
        # Patches and commits made from edited files would not apply to HEAD.
        base_commit = require_clean(sources.root, purpose)
    if commit_each:  # what a commit needs is checked before anything is written
        committer = require_identity(sources.root)
    writing = not (show_diff or patch_dir)
    if writing:  # held until the command ends; a killed run's writes are finished or undone first
        click.get_current_context().with_resource(FixLock(sources.root, notify=stderr))
        for message in recover(sources.root):
            stderr(message)
    elif pending_journal(sources.root):
        stderr("warning: an interrupted fix may have left the tree half-written; `kvmlint fix` finishes or undoes it first")
    database = None
    if build_dirs:
        from kvmlint.validation.compile_database import CompileDatabase

        database = CompileDatabase([Path(d) for d in build_dirs], sources.root)
        database.read_dependencies_early()
    cache = None if no_cache else Store.for_tree(sources.root, warn=warn, checkout=sources.in_checkout)
    analysis = analyse(sources, jobs=jobs or config.jobs, era=era or config.era, cache=cache)
    click.get_current_context().with_resource(reading_as_analysed(sources.root, analysis.facts))
    result = run_rules(analysis, selections)
    findings = [
        f for f in result.findings
        if f.code not in config.ignored_codes(f.path) and not is_excluded(f.path, config.exclude)
    ]
    if wanted != sources.root.resolve():
        findings = [f for f in findings if _within(sources.root / f.path, wanted)]
    if location is not None:
        findings = [f for f in findings if f.path == location[0] and f.line <= location[1] <= f.end_line]
        if not findings:
            raise UsageError(f"{location[0]}:{location[1]}: no finding there (kvmlint check lists them)")
    proposed = propose_changes(analysis, findings, unsafe=unsafe_fixes)
    planned = validate_plan(plan(sources.root, proposed.change_sets), analysis, unsafe=unsafe_fixes)
    for finding, why in proposed.unfixable:
        _not_fixed(finding, why)
    for refusal in planned.refused:
        stderr(f"refused: {refusal.change_set.title}: {refusal.reason}")
    if base_commit is not None:
        require_committed(sources.root, planned.originals, purpose)
        created = {new_file.path for change_set in planned.accepted for new_file in change_set.new_files}
        require_whole_checkout(sources.root, planned.originals, planned.contents_after(planned.accepted), created, purpose)
    rolled_back, kept = [], planned.accepted
    if not writing:
        _report_without_fix(findings, planned, kept)
    if show_diff:
        out(unified_diff(planned), nl=False)
    elif patch_dir:
        try:
            series = write_series(planned, Path(patch_dir), base_commit)
        except OSError as error:
            raise UsageError(f"{patch_dir}: cannot write the patch series ({error.strerror or error})") from None
        for written in series:
            echo(str(written))
    else:
        report = write(planned)
        for title, why in report.skipped:
            stderr(f"skipped: {title}: {why}")
        kept = on_disk = report.applied
        if database is not None:
            kept, rolled_back, on_disk = _build_check(planned, kept, database, findings, jobs, full_compile)
        committed = []
        if commit_each and on_disk == kept:
            sign = wants_signature(sources.root, gpg_sign)
            committed = _commit_each(planned, kept, base_commit, committer if signoff else None, sign)
        _report_without_fix(findings, planned, kept)
        for change_set in kept:
            echo(f"fixed: {change_set.title}")
        changed = still_changed(planned, on_disk, report.written)
        for written in changed:
            echo(f"wrote {written}")
        out(f"{len(changed)} file(s) written")
        if commit_each and on_disk != kept:
            stderr("not committed: the build check stopped before it finished")
        for commit, subject in committed:
            echo(f"committed {commit[:12]} {subject}")
    without_fix = findings_without_fix(findings, planned, kept)
    left = proposed.unfixable or without_fix or planned.refused or rolled_back or (writing and report.skipped)
    sys.exit(EXIT_FINDINGS if left else 0)


def _fix_location(path: str) -> tuple[str, tuple[str, int] | None]:
    """`fix FILE:LINE` names one finding: (the tree, (root-relative file, line))."""
    from kvmlint.source.discover import find_root

    file, _, line = path.rpartition(":")
    if not file or not line.isdigit() or os.path.exists(path):
        return path, None
    if not os.path.isfile(file):
        raise UsageError(f"{file}: no such file")
    root = find_root(Path(file).resolve())
    return str(root), (Path(file).resolve().relative_to(root).as_posix(), int(line))


def _commit_each(planned, change_sets, base: str, signoff: str | None, sign: bool) -> list[tuple[str, str]]:
    """One commit per written change set, its message the patch's: (commit id, subject).
    When they cannot all be made, the fixes are undone: work tree, index and HEAD are as
    they were before the run."""
    from kvmlint.codemods.engine import materialise
    from kvmlint.codemods.transaction import NotWritten
    from kvmlint.git.commits import NotCommitted, commit_each
    from kvmlint.reporters.patches import commit_message

    steps = []
    for number, change_set in enumerate(change_sets):
        before = planned.contents_after(change_sets[:number])
        after = planned.contents_after(change_sets[: number + 1])
        changed = {p: data for p, data in after.items() if before.get(p, planned.originals.get(p)) != data}
        steps.append((changed, commit_message(planned.root, change_set)))
    try:
        commits = commit_each(planned.root, base, steps, signoff, sign)
    except NotCommitted as error:
        try:
            materialise(planned, change_sets, [])
        except NotWritten as why:
            raise UsageError(f"--commit: {error}; the fixes stay written, uncommitted ({why})") from None
        raise UsageError(f"--commit: {error}; nothing was committed and the fixes are undone") from None
    return [(commit, message.split("\n", 1)[0]) for commit, (_, message) in zip(commits, steps)]


def _not_fixed(finding, why: str, lines: bool = False) -> None:
    """`why` keeps its line breaks when `lines` (a compiler's errors, escaped where they are made)."""
    where = for_terminal(f"{finding.path}:{finding.line}: {finding.code} {finding.symbol or ''}")
    stderr(f"not fixed: {where}: {why}", lines=lines)


def _report_without_fix(findings, planned, kept) -> None:
    from kvmlint.validation.outcome import findings_without_fix

    for finding in findings_without_fix(findings, planned, kept):
        _not_fixed(finding, f"no automatic fix: {finding.message}")


def _within(path, directory) -> bool:
    path = path.resolve()
    return path == directory or directory in path.parents


def _build_check(planned, written, database, findings, jobs, full_compile):
    """Compile what the written fixes touch; report and return (kept, rolled back or left
    unproven, on disk).  The findings a fix not kept was for are not fixed, with the reason."""
    from kvmlint.scope.cache import is_build_file
    from kvmlint.validation.build_check import check_fixes
    from kvmlint.validation.outcome import findings_fixed_by

    checked = check_fixes(planned, written, database, jobs or os.cpu_count() or 1, full_compile)
    report_database_warnings(database)
    for rolled in checked.rolled_back:
        unfixed = findings_fixed_by(findings, planned, rolled.change_set)
        stderr(f"rolled back: {for_terminal(rolled.change_set.title)}" + ("" if unfixed else f": {rolled.why}"), lines=True)
        for finding in unfixed:
            _not_fixed(finding, f"its fix was rolled back: {rolled.why}", lines=True)
    if checked.stopped:
        stderr(f"build-check: stopped: {checked.stopped}", lines=True)
    for left in checked.left:
        unfixed = findings_fixed_by(findings, planned, left.change_set)
        stderr(f"left unproven on disk: {for_terminal(left.change_set.title)}" + ("" if unfixed else f": {left.why}"), lines=True)
        for finding in unfixed:
            _not_fixed(finding, f"its fix is left unproven on disk (the build check stopped): {left.why}", lines=True)
    for failure in checked.still_failing:
        if failure.refused:
            stderr(f"build-check: {failure.format(planned.root)}", lines=True)
        else:
            stderr(f"build-check: fails without the fixes too: {failure.format(planned.root)}", lines=True)
    for path, change_sets in checked.unchecked:
        if is_build_file(path):  # a unit compiles the same with or without a line of meson.build
            titles = ", ".join(f"'{s.title}'" for s in change_sets)
            stderr(f"build-check: {path} (changed by {titles}): a build file, not proven by compiling units; "
                    "build the tree to check it")
        else:
            stderr(f"build-check: {path}: no unit of {database.label} compiles it; not checked")
    report_never_built(database)
    stderr(f"build-check: {checked.compiled} compilation(s){front_end_note(checked.front_end_only)} in "
            f"{checked.seconds:.1f}s, {len(checked.kept)} fix(es) compile, {len(checked.rolled_back)} rolled back"
            + (f", {len(checked.left)} left unproven" if checked.left else ""))
    on_disk = [s for s in written if s in checked.kept or any(s is left.change_set for left in checked.left)]
    return checked.kept, checked.rolled_back + checked.left, on_disk
