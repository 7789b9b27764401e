"""Command line: `kvmlint check|fix|validate-build|scope|explain|rules|validate|model`.

Exit status: 0 no findings, 1 findings, 2 usage error or unusable input.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from kvmlint import __version__, rules
from kvmlint.cli.config import ERAS
from kvmlint.errors import UsageError
from kvmlint.reporters import FORMATS
from kvmlint.terminal import for_terminal, lines_for_terminal

EXIT_FINDINGS = 1
EXIT_USAGE = 2
FULL_COMPILE_HELP = ("Compile every affected unit with its whole recorded command.  By default a unit whose own "
                     "source is unchanged and that sees only changed declarations, and macros it does not use, gets the front "
                     "end (-fsyntax-only).")
STAGED_HELP = ("Only findings on lines the staged change adds or modifies (the pre-commit hook), judged on the "
               "staged content whatever the work tree holds.  During a merge, only lines new against every parent "
               "(HEAD and MERGE_HEAD) count: what the merge itself brings, such as conflict resolutions.  With "
               "nothing staged, the given PATHS whole.")
DIFF_BASE_HELP = ("Only findings on lines changed since the branch left REF (its merge base with HEAD), uncommitted "
                  "edits included, judged on the work tree.")


def _split_words(values: tuple[str, ...]) -> list[str]:
    return [word for value in values for word in value.split(",") if word.strip()]


def _stderr(message: str, lines: bool = False) -> None:
    """`kvmlint: MESSAGE` on stderr, on one line unless `lines` (a compiler's output, its names escaped where they are made)."""
    click.echo(f"kvmlint: {(lines_for_terminal if lines else for_terminal)(message)}", err=True)


def _echo(line: str, lines: bool = False) -> None:
    """A line of a human report on stdout: names from the tree cannot break it or act on the terminal."""
    click.echo((lines_for_terminal if lines else for_terminal)(line))


def _warn(message: str) -> None:
    _stderr(f"warning: {message}")


def _use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvmlint")
def cli() -> None:
    """Lint and fix QEMU's KVM layer: proxy uses of kvm_irqchip_in_kernel() in
    common code, and architecture-specific helpers in common KVM files."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", "selected", multiple=True, help="Rules to run (codes, names or aliases; comma-separated).")
@click.option("--ignore", "ignored", multiple=True, help="Rules not to run.")
@click.option("--exclude", multiple=True, help="Glob of paths to skip (repeatable).")
@click.option("--format", "format_name", type=click.Choice(FORMATS), default=None, help="Output format [default: text].")
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), default=None, help="Write the report to FILE (atomically) instead of standard output.")
@click.option("--staged", is_flag=True, help=STAGED_HELP)
@click.option("--diff-base", metavar="REF", default=None, help=DIFF_BASE_HELP)
@click.option("--show-suppressed", is_flag=True, help="Also list findings that a `kvmlint: ignore` comment silences.")
@click.option("--strict", is_flag=True, help="Also report `kvmlint: ignore` comments that silence nothing, as KVM000.")
@click.option("--statistics", is_flag=True, help="Count findings per rule (text: instead of the findings; other formats: on stderr).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Parser processes [default: CPU count].")
@click.option("--era", type=click.Choice(ERAS), default=None, help="Model era [default: inferred from the tree].")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no warnings.")
@click.option("--verbose", "-v", is_flag=True, help="List every warning, the time per phase and what --staged/--diff-base left out.")
@click.option("--no-cache", is_flag=True, help="Parse every file again; neither read nor write .kvmlint_cache/ (or $KVMLINT_CACHE_DIR).")
def check(
    paths, selected, ignored, exclude, format_name, output_file, staged, diff_base, show_suppressed, strict,
    statistics, jobs, era, quiet, verbose, no_cache,
) -> None:
    """Report findings in PATHS (files or directories; default: .).

    Settings come from kvmlint.toml or [tool.kvmlint] in pyproject.toml at or
    above the checked tree; options given here override them."""
    from kvmlint.analysis import analyse, run_rules
    from kvmlint.cli.config import load_config
    from kvmlint.cli.progress import Progress, wanted as progress_wanted
    from kvmlint.findings import Finding
    from kvmlint.git.diffs import changes_since, index_overlay, staged_changes
    from kvmlint.reporters import Report, render, render_statistics, write_atomically
    from kvmlint.scope.cache import is_build_file
    from kvmlint.source.discover import C_SUFFIXES, PYTHON_SUFFIXES, discover, find_root
    from kvmlint.store import Store

    started = time.perf_counter()
    if staged and diff_base:
        raise UsageError("--staged and --diff-base cannot be combined")
    config = load_config(find_root(Path(os.path.commonpath([os.path.abspath(p) for p in paths or ["."]]))))
    format_name = format_name or config.format or "text"
    output_named_by_user = output_file is not None  # else the tree's configuration names it
    output_file = output_file or config.output_file
    selections = rules.select(
        _split_words(selected) or list(config.select), _split_words(ignored) or list(config.ignore)
    )
    suffixes = C_SUFFIXES + PYTHON_SUFFIXES  # Python files too: KVM006 reads QEMU's functional tests
    changes = None

    def staged_content(root: Path) -> dict:
        """--staged: the change's lines, and the index's content where the work tree differs."""
        nonlocal changes
        changes = staged_changes(root)
        if paths and not changes.lines:
            # Nothing staged (`pre-commit run --all-files`, `--files`): judge the given files whole, as they are.
            changes = None
            return {}
        return index_overlay(root, lambda path: path.endswith(suffixes) or is_build_file(path))

    sources = discover(list(paths), tuple(exclude) or config.exclude, suffixes=suffixes,
                       overlay=staged_content if staged else None)
    if diff_base:
        changes = changes_since(sources.root, diff_base)

    progress = Progress("parsing") if progress_wanted() and not quiet else None
    try:
        cache = None if no_cache else Store.for_tree(sources.root, warn=None if quiet else _warn)
        analysis = analyse(sources, jobs=jobs or config.jobs, era=era or config.era, on_progress=progress, cache=cache)
    finally:
        if progress is not None:
            progress.close()
    result = run_rules(analysis, selections)
    if not quiet:
        _print_warnings(analysis, verbose)
        for path in sorted(filter(is_build_file, sources.overlay)):
            _stderr(f"warning: {path}: not as staged; scopes are read from the work tree's version of it "
                    f"(stash the unstaged changes to judge exactly what is committed)")

    def without_ignored(findings: list[Finding]) -> list[Finding]:
        return [f for f in findings if f.code not in config.ignored_codes(f.path)]

    def in_change(findings: list[Finding]) -> list[Finding]:
        if changes is None:
            return findings
        return [f for f in findings if changes.touches(f.path, f.line, f.end_line)]

    candidates = without_ignored(result.findings + (result.unused_suppressions if strict else []))
    findings = in_change(sorted(candidates, key=Finding.sort_key))
    report = Report(
        findings=findings,
        root=sources.root,
        display_base=sources.display_base,
        files=len(sources.files),
        parsed=len(analysis.facts),
        seconds=time.perf_counter() - started,
        color=format_name == "text" and not output_file and _use_color(sys.stdout),
        suppressed=tuple(in_change(without_ignored(result.suppressed))),
        show_suppressed=show_suppressed,
        overlay=sources.overlay,
    )
    output = render(format_name, report)
    if statistics and format_name == "text":
        output = render_statistics(findings)
    elif statistics:
        click.echo(render_statistics(findings), nl=False, err=True)
    if output_file:
        try:
            write_atomically(Path(output_file), output, named_by_user=output_named_by_user)
        except OSError as error:
            raise UsageError(f"{output_file}: cannot write the report ({error.strerror or error})") from None
    else:
        click.echo(output, nl=False)
    if verbose:
        if config.source:
            _stderr(f"config: {config.source}")
        if changes is not None:
            _stderr(f"{len(candidates) - len(findings)} finding(s) outside the changed lines not reported")
        extraction = analysis.extraction
        _stderr(f"read {extraction.files_read} files ({extraction.bytes_read / 1e6:.1f} MB), {len(analysis.facts)} with facts: "
                f"{extraction.parsed} parsed, {extraction.from_cache} from the cache")
        for phase, seconds in analysis.timings.items():
            _stderr(f"{phase}: {seconds:.3f}s")
    sys.exit(EXIT_FINDINGS if findings else 0)


def _print_warnings(analysis, verbose: bool) -> None:
    from kvmlint.source.extract import MOSTLY_UNPARSEABLE

    for path, problem in analysis.extraction.skipped:
        _stderr(f"warning: {path}: {problem}")
    for build_file, problem in analysis.scope_resolver.warnings:
        _stderr(f"warning: {build_file}: {problem}")
    relevant = None
    for facts in analysis.facts.values():
        for warning in facts.warnings:
            if warning.startswith(MOSTLY_UNPARSEABLE) and not verbose:
                relevant = _names_rules_read(analysis) if relevant is None else relevant
                if not any(name in relevant or name.endswith("=") for name in facts.unparsed_names):
                    continue  # nothing a rule reads was lost; --verbose notes the errors
            _stderr(f"warning: {facts.path}: {warning}")
    if verbose:
        for facts in analysis.facts.values():
            if facts.error_nodes and not any(w.startswith(MOSTLY_UNPARSEABLE) for w in facts.warnings):
                _stderr(f"note: {facts.path}:{facts.first_error_line}: {facts.error_nodes} syntax error(s), analysed around them")


def _names_rules_read(analysis) -> set[str]:
    """The names whose uses the rules judge: the proxy, and everything the
    common KVM files define (KVM002 and KVM003 count their callers)."""
    from kvmlint.rules.kvm001_irqchip_proxy import PROXY
    from kvmlint.rules.kvm002_arch_helper_in_common import is_common_kvm_file

    defined = {
        name for name, located in analysis.index.definitions.items()
        if any(is_common_kvm_file(analysis, place.path) for place in located)
    }
    return defined | {PROXY}


@cli.command()
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
        _split_words(rule_words + selected) or list(config.select), _split_words(ignored) or list(config.ignore)
    )
    # Excluded files are read all the same: a fix that spans files (a move, a rename) must edit them too.
    sources = discover([str(root)], suffixes=C_SUFFIXES + PYTHON_SUFFIXES)
    base_commit = committer = None
    purpose = "--format-patch" if patch_dir else "--commit"
    if patch_dir or commit_each:
        # Patches and commits made from edited files would not apply to HEAD.
        base_commit = require_clean(sources.root, purpose)
    if commit_each:  # what a commit needs is checked before anything is written
        committer = require_identity(sources.root)
    writing = not (show_diff or patch_dir)
    if writing:  # held until the command ends; a killed run's writes are finished or undone first
        click.get_current_context().with_resource(FixLock(sources.root, notify=_stderr))
        for message in recover(sources.root):
            _stderr(message)
    elif pending_journal(sources.root):
        _stderr("warning: an interrupted fix may have left the tree half-written; `kvmlint fix` finishes or undoes it first")
    database = None
    if build_dirs:
        from kvmlint.validation.build_check import CompileDatabase

        database = CompileDatabase([Path(d) for d in build_dirs], sources.root)
        database.read_dependencies_early()
    cache = None if no_cache else Store.for_tree(sources.root, warn=_warn)
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
        _stderr(f"refused: {refusal.change_set.title}: {refusal.reason}")
    if base_commit is not None:
        require_committed(sources.root, planned.originals, purpose)
        created = {new_file.path for change_set in planned.accepted for new_file in change_set.new_files}
        require_whole_checkout(sources.root, planned.originals, planned.contents_after(planned.accepted), created, purpose)
    rolled_back, kept = [], planned.accepted
    if not writing:
        _report_without_fix(findings, planned, kept)
    if show_diff:
        click.echo(unified_diff(planned), nl=False)
    elif patch_dir:
        try:
            series = write_series(planned, Path(patch_dir), base_commit)
        except OSError as error:
            raise UsageError(f"{patch_dir}: cannot write the patch series ({error.strerror or error})") from None
        for written in series:
            _echo(str(written))
    else:
        report = write(planned)
        for title, why in report.skipped:
            _stderr(f"skipped: {title}: {why}")
        kept = on_disk = report.applied
        if database is not None:
            kept, rolled_back, on_disk = _build_check(planned, kept, database, findings, jobs, full_compile)
        committed = []
        if commit_each and on_disk == kept:
            sign = wants_signature(sources.root, gpg_sign)
            committed = _commit_each(planned, kept, base_commit, committer if signoff else None, sign)
        _report_without_fix(findings, planned, kept)
        for change_set in kept:
            _echo(f"fixed: {change_set.title}")
        changed = _still_changed(planned, on_disk, report.written)
        for written in changed:
            _echo(f"wrote {written}")
        click.echo(f"{len(changed)} file(s) written")
        if commit_each and on_disk != kept:
            _stderr("not committed: the build check stopped before it finished")
        for commit, subject in committed:
            _echo(f"committed {commit[:12]} {subject}")
    without_fix = _findings_without_fix(findings, planned, kept)
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
    _stderr(f"not fixed: {where}: {why}", lines=lines)


def _report_without_fix(findings, planned, kept) -> None:
    for finding in _findings_without_fix(findings, planned, kept):
        _not_fixed(finding, f"no automatic fix: {finding.message}")


def _findings_without_fix(findings, planned, kept) -> list:
    """Findings no code-mod can fix, except those inside code a `kept` fix removes
    (a proxy use inside a helper that moves into its target)."""
    removed: dict[str, list[tuple[int, int]]] = {}
    for change_set in kept:
        for edit in change_set.edits:
            data = planned.originals.get(edit.path)
            if data is not None and edit.end > edit.start:
                first, last = data.count(b"\n", 0, edit.start) + 1, data.count(b"\n", 0, edit.end)
                removed.setdefault(edit.path, []).append((first, last))
    return [
        f for f in findings
        if f.fix is None and not any(a <= f.line and f.end_line <= b for a, b in removed.get(f.path, []))
    ]


def _edited_lines(planned, edit) -> tuple[int, int] | None:
    """The first and last line of the original text an edit touches (None in a new file)."""
    data = planned.originals.get(edit.path)
    if data is None:
        return None
    return data.count(b"\n", 0, edit.start) + 1, data.count(b"\n", 0, max(edit.start, edit.end - 1)) + 1


def _findings_fixed_by(findings, planned, change_set) -> list:
    """The findings of `change_set`'s rule whose lines its edits rewrite."""
    spans = [(e.path, _edited_lines(planned, e)) for e in change_set.edits]
    return [
        f for f in findings
        if f.fix is not None and f.code == change_set.code
        and any(path == f.path and lines and lines[0] <= f.line <= lines[1] for path, lines in spans)
    ]


def _still_changed(planned, kept, written: list[str]) -> list[str]:
    """Those `written` files that differ from the originals once only `kept` change sets apply."""
    after = planned.contents_after(kept)
    return [path for path in written if after.get(path, planned.originals.get(path)) != planned.originals.get(path)]


def _within(path, directory) -> bool:
    path = path.resolve()
    return path == directory or directory in path.parents


def _build_check(planned, written, database, findings, jobs, full_compile):
    """Compile what the written fixes touch; report and return (kept, rolled back or left
    unproven, on disk).  The findings a fix not kept was for are not fixed, with the reason."""
    from kvmlint.scope.cache import is_build_file
    from kvmlint.validation.build_check import check_fixes

    checked = check_fixes(planned, written, database, jobs or os.cpu_count() or 1, full_compile)
    _report_database_warnings(database)
    for rolled in checked.rolled_back:
        unfixed = _findings_fixed_by(findings, planned, rolled.change_set)
        _stderr(f"rolled back: {for_terminal(rolled.change_set.title)}" + ("" if unfixed else f": {rolled.why}"), lines=True)
        for finding in unfixed:
            _not_fixed(finding, f"its fix was rolled back: {rolled.why}", lines=True)
    if checked.stopped:
        _stderr(f"build-check: stopped: {checked.stopped}", lines=True)
    for left in checked.left:
        unfixed = _findings_fixed_by(findings, planned, left.change_set)
        _stderr(f"left unproven on disk: {for_terminal(left.change_set.title)}" + ("" if unfixed else f": {left.why}"), lines=True)
        for finding in unfixed:
            _not_fixed(finding, f"its fix is left unproven on disk (the build check stopped): {left.why}", lines=True)
    for failure in checked.still_failing:
        if failure.refused:
            _stderr(f"build-check: {failure.format(planned.root)}", lines=True)
        else:
            _stderr(f"build-check: fails without the fixes too: {failure.format(planned.root)}", lines=True)
    for path, change_sets in checked.unchecked:
        if is_build_file(path):  # a unit compiles the same with or without a line of meson.build
            titles = ", ".join(f"'{s.title}'" for s in change_sets)
            _stderr(f"build-check: {path} (changed by {titles}): a build file, not proven by compiling units; "
                    "build the tree to check it")
        else:
            _stderr(f"build-check: {path}: no unit of {database.label} compiles it; not checked")
    _report_never_built(database)
    _stderr(f"build-check: {checked.compiled} compilation(s){_front_end_note(checked.front_end_only)} in "
            f"{checked.seconds:.1f}s, {len(checked.kept)} fix(es) compile, {len(checked.rolled_back)} rolled back"
            + (f", {len(checked.left)} left unproven" if checked.left else ""))
    on_disk = [s for s in written if s in checked.kept or any(s is left.change_set for left in checked.left)]
    return checked.kept, checked.rolled_back + checked.left, on_disk


def _report_database_warnings(database) -> None:
    for warning in database.warnings:
        _stderr(f"warning: {warning}")


def _front_end_note(count: int) -> str:
    return f" ({count} by the front end alone: they see only changed declarations, and macros they do not use)" if count else ""


def _report_never_built(database) -> None:
    if database.never_built:
        _stderr(f"build-check: {len(database.never_built)} unit(s) that {database.label} never built: "
                "the build cannot say whether they read the changed headers; not checked (build them once to check them)")


@cli.command("validate-build")
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Compiler processes [default: CPU count].")
@click.option("--full-compile", is_flag=True, help=FULL_COMPILE_HELP)
def validate_build(build_dir, files, jobs, full_compile) -> None:
    """Recompile, with BUILD_DIR's compile_commands.json, every unit that FILES touch
    (default: the files git sees changed in the checkout at the current directory).
    What changed in each file is read against git's HEAD.

    Exit 0 when all of them compile, 1 when some do not."""
    from kvmlint.source.discover import find_root
    from kvmlint.validation.build_check import (
        CompileDatabase,
        FrontEndChooser,
        changed_files,
        compile_units,
        uncommitted_changes,
        untracked,
    )

    for name in files:
        if not Path(name).exists():
            raise UsageError(f"{name}: no such file or directory")
    changed = [Path(name).resolve() for name in files]
    root = find_root(Path(os.path.commonpath(changed)) if changed else Path.cwd().resolve())
    database = CompileDatabase([Path(build_dir)], root)
    changed, new = (changed, untracked(root, changed)) if changed else changed_files(root)
    front_end = None if full_compile else FrontEndChooser(database, changed, uncommitted_changes(root, changed))
    compiled = compile_units(database.each_affected(changed, new), jobs or os.cpu_count() or 1, database.confines,
                             front_end)
    _report_database_warnings(database)
    for failure in compiled.failures:
        _echo(f"{'cannot check' if failure.refused else 'does not compile'}: {failure.format(root)}", lines=True)
    _report_never_built(database)
    refused = f", {compiled.refused} not run (kvmlint will not run their commands)" if compiled.refused else ""
    click.echo(f"{compiled.units} unit(s) compiled{_front_end_note(compiled.front_end_only)} in {compiled.seconds:.1f}s "
               f"for {len(changed)} changed file(s), {len(compiled.failures) - compiled.refused} failed{refused}")
    sys.exit(EXIT_FINDINGS if compiled.failures else 0)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--exclude", multiple=True, help="Glob of paths to skip (repeatable).")
def scope(paths, exclude) -> None:
    """Print each file's architecture scope and the reason."""
    from kvmlint.scope import ScopeResolver
    from kvmlint.source.discover import discover

    sources = discover(list(paths), tuple(exclude))
    resolver = ScopeResolver(sources.root)
    for path in sources.files:
        decided = resolver.scope_of(path)
        _echo(f"{path}: {decided.label}: {decided.reason}; "
              f"compile unit: {decided.unit or 'unknown'} ({decided.unit_reason})")
    for build_file, problem in resolver.warnings:
        _stderr(f"warning: {build_file}: {problem}")


@cli.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print a rule's documentation (by code, name or alias)."""
    selection = rules.resolve(rule)
    chosen = selection.rule
    aliases = ", ".join(chosen.aliases) or "none"
    click.echo(f"# {chosen.code} {chosen.name}\n")
    click.echo(f"{chosen.summary}\n")
    click.echo(f"Fix available: {'yes' if chosen.fixable else 'no'}. Aliases: {aliases}.\n")
    click.echo(chosen.docs)


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option("--arch", "arches", multiple=True, help="Only these architectures (repeatable).")
@click.option("--era", type=click.Choice(["2012", "current"]), default="current", show_default=True)
@click.option("--needs", default=None, help="The expression the site really needs, to judge the direction of each difference.")
def validate(old, new, arches, era, needs) -> None:
    """Compare two C conditions over every configuration of every architecture.

    Exit 0 when the rewrite is safe, 1 when it is not."""
    from kvmlint.model import ExpressionError, format_validation_table, load_model
    from kvmlint.model import validate as compare

    model = load_model(era)
    unknown = sorted(set(arches) - set(model.arches))
    if unknown:
        raise UsageError(f"unknown architecture {', '.join(unknown)}; known: {', '.join(model.arches)}")
    try:
        verdict = compare(model, old, new, arches=tuple(arches) or None, needed=needs)
    except ExpressionError as error:
        raise UsageError(f"cannot read the expression: {error}") from error
    click.echo(format_validation_table(verdict))
    sys.exit(0 if verdict.safe else EXIT_FINDINGS)


@cli.command()
@click.option("--arch", default=None, help="Only this architecture.")
@click.option("--era", type=click.Choice(["2012", "current"]), default=None, help="[default: current, or the tree's with --verify]")
@click.option("--verify", "tree", type=click.Path(), default=None, help="Derive each architecture's facts from this tree's setters and report drift.")
def model(arch, era, tree) -> None:
    """Print each architecture's predicates by configuration, or check them against a tree."""
    from kvmlint.model import format_drift, format_model_table, load_model, verify

    if tree is None:
        chosen = load_model(era or "current")
        if arch is not None and arch not in chosen.arches:
            raise UsageError(f"unknown architecture {arch}; known: {', '.join(chosen.arches)}")
        click.echo(format_model_table(chosen, arch))
        return
    from kvmlint.analysis import analyse
    from kvmlint.source.discover import discover

    analysis = analyse(discover([tree]), era=era)
    setters = []
    for located in (a for assignments in analysis.index.assignments.values() for a in assignments):
        scope = analysis.scope(located.path)
        assignment = located.item
        for where in ["common"] if scope.common else sorted(scope.arches):
            setters.append((where, assignment.name, assignment.value, located.path, assignment.span.line, assignment.function))
    drifts = verify(analysis.model, setters)
    _echo(f"model era {analysis.era}, {len(setters)} setters read from {tree}")
    click.echo(format_drift(drifts))
    sys.exit(EXIT_FINDINGS if any(not d.era_difference for d in drifts) else 0)


@cli.command("rules")
def list_rules() -> None:
    """List every rule: code, name, whether it can fix, summary."""
    for rule in rules.all_rules():
        fix = "fix" if rule.fixable else "   "
        click.echo(f"{rule.code}  {rule.name:<26} {fix}  {rule.summary}")


def main() -> None:
    try:
        cli.main(prog_name="kvmlint", standalone_mode=False)
    except UsageError as error:
        _stderr(str(error))
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        _stderr("aborted")
        sys.exit(EXIT_USAGE)
    except click.ClickException as error:  # one line, like every other bad input
        _stderr(error.format_message())
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:
        sys.exit(EXIT_FINDINGS)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # never a traceback for the user; KVMLINT_DEBUG=1 shows it
        if os.environ.get("KVMLINT_DEBUG"):
            raise
        _stderr(f"internal error: {type(error).__name__}: {error} (set KVMLINT_DEBUG=1 for details)")
        sys.exit(EXIT_USAGE)
