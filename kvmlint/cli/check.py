"""`kvmlint check`: findings in a tree, or only in what a change introduces (the pre-commit hook)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from kvmlint import rules
from kvmlint.cli.config import ERAS
from kvmlint.cli.output import EXIT_FINDINGS, out, split_words, stderr, use_color, warn
from kvmlint.errors import UsageError
from kvmlint.reporters import FORMATS

STAGED_HELP = ("Only findings on lines the staged change adds or modifies (the pre-commit hook), judged on the "
               "staged content whatever the work tree holds.  During a merge, only lines new against every parent "
               "(HEAD and MERGE_HEAD) count: what the merge itself brings, such as conflict resolutions.  With "
               "nothing staged, the given PATHS whole.")
DIFF_BASE_HELP = ("Only findings on lines changed since the branch left REF (its merge base with HEAD), uncommitted "
                  "edits included, judged on the work tree.  A range A..B (or A...B): the lines B changed since it "
                  "left A, judged on B's content.")
PATCH_HELP = ("Review a patch or series (mbox or `git format-patch` output; - reads standard input): each patch is "
              "applied in memory on --base, and only the findings on the lines it adds are reported, each naming "
              "its patch.  The work tree and the index are not touched.")
BASELINE_HELP = ("Report only findings that are not in FILE (written by --write-baseline), and say how many it held "
                 "back and how many of its entries match no finding any more [default: the config's baseline].")
WRITE_BASELINE_HELP = ("Write the findings to FILE as a baseline (JSON, sorted; keyed on fingerprints that survive line "
                       "moves) instead of reporting them, and exit 0.")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", "selected", multiple=True, help="Rules to run (codes, code prefixes such as KVM, names or aliases; comma-separated).")
@click.option("--extend-select", "extended", multiple=True, help="Rules to run besides those selected (by the config or by default).")
@click.option("--ignore", "ignored", multiple=True, help="Rules not to run.")
@click.option("--exclude", multiple=True, help="Glob of paths to skip (repeatable).")
@click.option("--format", "format_name", type=click.Choice(FORMATS), default=None, help="Output format [default: text].")
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), default=None, help="Write the report to FILE (atomically) instead of standard output.")
@click.option("--staged", is_flag=True, help=STAGED_HELP)
@click.option("--diff-base", metavar="REF|A..B", default=None, help=DIFF_BASE_HELP)
@click.option("--patch", metavar="FILE|-", default=None, help=PATCH_HELP)
@click.option("--base", metavar="REV", default=None, help="With --patch: the commit the series applies to [default: HEAD].")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), default=None, help=BASELINE_HELP)
@click.option("--write-baseline", type=click.Path(dir_okay=False), default=None, help=WRITE_BASELINE_HELP)
@click.option("--show-suppressed", is_flag=True, help="Also list findings that a `kvmlint: ignore` comment silences.")
@click.option("--strict", is_flag=True, help="Also report `kvmlint: ignore` comments that silence nothing, as KVM000.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (errors still exit 2).")
@click.option("--statistics", is_flag=True, help="Count findings per rule (text: instead of the findings; other formats: on stderr).")
@click.option("--unsafe-fixes", is_flag=True, help="JSON and SARIF: each finding's fix as `fix --unsafe-fixes` writes it (marked unsafe where it differs).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Parser processes [default: CPU count].")
@click.option("--era", type=click.Choice(ERAS), default=None, help="Model era [default: inferred from the tree].")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no warnings.")
@click.option("--verbose", "-v", is_flag=True, help="List every warning, the time per phase and what --staged/--diff-base left out.")
@click.option("--no-cache", is_flag=True, help="Parse every file again; neither read nor write .kvmlint_cache/ (or $KVMLINT_CACHE_DIR).")
def check(
    paths, selected, extended, ignored, exclude, format_name, output_file, staged, diff_base, patch, base,
    baseline_file, write_baseline, show_suppressed, strict, exit_zero, statistics, unsafe_fixes, jobs, era, quiet, verbose,
    no_cache,
) -> None:
    """Report findings in PATHS (files or directories; default: .).

    Settings come from kvmlint.toml or [tool.kvmlint] in pyproject.toml at or
    above the checked tree; options given here override them."""
    from kvmlint.analysis import fixes_for_check
    from kvmlint.cli.config import load_config
    from kvmlint.files import Overlay
    from kvmlint.findings import Finding
    from kvmlint.git.diffs import changes_since, index_overlay, staged_changes
    from kvmlint.git.series import TreeState, is_range, patch_states, range_state, read_series
    from kvmlint.reporters import FORMATS_WITH_FIXES, Report, render, render_statistics, write_atomically, write_files_atomically
    from kvmlint.reporters.baseline import read as read_baseline, render as render_baseline
    from kvmlint.scope.cache import is_build_file
    from kvmlint.source.discover import C_SUFFIXES, PYTHON_SUFFIXES, discover, find_root, is_excluded
    from kvmlint.store import Store

    started = time.perf_counter()
    if sum(map(bool, (staged, diff_base, patch))) > 1:
        raise UsageError("--staged, --diff-base and --patch cannot be combined")
    if base is not None and patch is None:
        raise UsageError("--base goes with --patch")
    if write_baseline and (staged or diff_base or patch):
        raise UsageError("--write-baseline records a whole check; it does not go with --staged, --diff-base or --patch")
    if write_baseline and baseline_file:
        raise UsageError("--baseline and --write-baseline cannot be combined")
    config = load_config(find_root(Path(os.path.commonpath([os.path.abspath(p) for p in paths or ["."]]))))
    # Read before the analysis, so that a broken baseline costs no run; writing one replaces the config's.
    baseline_path = Path(baseline_file) if baseline_file else None if write_baseline else config.baseline
    baseline_name = baseline_file or (config.baseline and os.path.relpath(config.baseline))
    baseline = read_baseline(baseline_path, baseline_name) if baseline_path else None
    format_name = format_name or config.format or "text"
    output_named_by_user = output_file is not None  # else the tree's configuration names it
    output_file = output_file or config.output_file
    selections = rules.select(
        split_words(selected) or list(config.select),
        split_words(ignored) or list(config.ignore),
        ([] if selected else list(config.extend_select)) + split_words(extended),  # --select replaces both
    )
    suffixes = C_SUFFIXES + PYTHON_SUFFIXES  # Python files too: KVM006 reads QEMU's functional tests

    def wanted(path: str) -> bool:
        return path.endswith(suffixes) or is_build_file(path)

    changes = None
    series = read_series(patch) if patch is not None else None
    reviewed = series is not None or (diff_base is not None and is_range(diff_base))
    states: list[TreeState] = []  # --patch, --diff-base A..B: the trees judged instead of the work tree

    def staged_content(root: Path) -> dict:
        """--staged: the change's lines, and the index's content where the work tree differs."""
        nonlocal changes
        changes = staged_changes(root)
        if paths and not changes.any_change:
            # Nothing staged (`pre-commit run --all-files`, `--files`): judge the given files whole, as they are.
            changes = None
            return {}
        return index_overlay(root, wanted)

    def reviewed_content(root: Path) -> Overlay:
        """--patch, --diff-base A..B: the first tree's content where the work tree differs (the others follow)."""
        if series is not None:
            states.extend(patch_states(root, series, base or "HEAD", wanted, f"--patch {patch}"))
        else:
            states.append(range_state(root, diff_base, wanted, f"--diff-base {diff_base}"))
        return states[0].overlay

    # The rules see the whole checkout; the paths named, the exclusions and the change only filter the report.
    sources = discover(list(paths), suffixes=suffixes, whole_tree=True,
                       overlay=staged_content if staged else reviewed_content if reviewed else None)
    excluded = tuple(exclude) or config.exclude
    if diff_base and not reviewed:
        changes = changes_since(sources.root, diff_base)
    judged = [(sources, TreeState({}, changes) if changes is not None else None)]
    if states:  # one analysis per patch, each of the tree that patch leaves
        later = [discover(list(paths), suffixes=suffixes, whole_tree=True, overlay=lambda _root, state=state: state.overlay)
                 for state in states[1:]]
        judged = list(zip([sources, *later], states))

    def reported(found: list[Finding], named) -> list[Finding]:
        """What the command reports: in the named paths, neither excluded nor ignored."""
        return [f for f in sorted(found, key=Finding.sort_key) if named(f.path)
                and not is_excluded(f.path, excluded) and f.code not in config.ignored_codes(f.path)]

    def in_change(found: list[Finding], state: TreeState | None, before: set) -> list[Finding]:
        """Of those, the ones the change introduces: on the lines it adds or, in a
        series, on lines an earlier patch added that make a finding only once this one is applied (a helper
        whose callers come later).  `before`: the findings of the tree the patch applies to."""

        def introduced(f: Finding) -> bool:
            if state is None or state.changes.touches(f.path, f.line, f.end_line):
                return True
            return (state.series_changes is not None and state.series_changes.touches(f.path, f.line, f.end_line)
                    and _identity(f) not in before)

        return [f for f in found if introduced(f)]

    def labelled(found: list[Finding], state: TreeState | None) -> list[Finding]:
        """Each finding naming its patch."""
        return [replace(f, message=f"{state.label}: {f.message}") for f in found] if state and state.label else found

    cache = None if no_cache else Store.for_tree(sources.root, warn=None if quiet else warn, checkout=sources.in_checkout)
    findings, suppressed, warnings, left_out, overlay, before, fixes = [], [], {}, 0, {}, set(), {}
    for judged_sources, state in judged:
        analysis, result = _judge(judged_sources, selections, jobs or config.jobs, era or config.era, cache, quiet)
        if not quiet:
            warnings.update(dict.fromkeys(_warnings(analysis, verbose)))
            as_judged = "not as patched" if reviewed else "not as staged"
            warnings.update(dict.fromkeys(
                f"warning: {path}: {as_judged}; scopes are read from the work tree's version of it"
                + ("" if reviewed else " (stash the unstaged changes to judge exactly what is committed)")
                for path in sorted(filter(is_build_file, judged_sources.overlay))
            ))

        candidates = reported(result.findings + (result.unused_suppressions if strict else []), judged_sources.names)
        introduced = in_change(candidates, state, before)
        shown = labelled(introduced, state)
        if format_name in FORMATS_WITH_FIXES:
            planned = fixes_for_check(analysis, introduced, unsafe_fixes)
            fixes.update((as_shown, planned[f]) for f, as_shown in zip(introduced, shown) if f in planned)
        findings += shown
        left_out += len(candidates) - len(introduced)
        suppressed += labelled(in_change(reported(result.suppressed, judged_sources.names), state, before), state)
        overlay.update(judged_sources.overlay)
        before = {_identity(f) for f in result.findings + result.suppressed}
    for line in warnings:
        stderr(line)
    report = Report(
        findings=findings,
        root=sources.root,
        display_base=sources.display_base,
        working_directory=Path.cwd(),
        files=len(sources.files),
        parsed=len(analysis.facts),
        seconds=time.perf_counter() - started,
        color=format_name == "text" and not output_file and use_color(sys.stdout),
        suppressed=tuple(suppressed),
        show_suppressed=show_suppressed,
        overlay=overlay,
        fixes=fixes,
    )
    if write_baseline:
        target = Path(write_baseline)
        try:
            write_files_atomically(target.parent, [(target.name, render_baseline(report))])
        except OSError as error:
            raise UsageError(f"{write_baseline}: cannot write the baseline ({error.strerror or error})") from None
        stderr(f"baseline {write_baseline}: wrote {_count(len(findings), 'finding')}")
        sys.exit(0)
    if baseline is not None:
        fingerprints = report.fingerprints
        held = [f for f in findings if fingerprints[f] in baseline]
        findings = [f for f in findings if fingerprints[f] not in baseline]
        report = replace(report, findings=findings, baselined=tuple(held))
        if not quiet:
            matched = set(fingerprints.values())
            stale = None if staged or diff_base or patch else sum(
                1 for entry in baseline.values()
                if entry.fingerprint not in matched and sources.names(entry.path) and _ran(entry, selections, strict)
                and not is_excluded(entry.path, excluded) and entry.code not in config.ignored_codes(entry.path))
            stderr(f"baseline {baseline_name}: {_count(len(held), 'finding')} baselined (not reported)"
                   + ("" if stale is None else f", {_stale(stale)}"))
    output = render(format_name, report)
    if statistics and format_name == "text":
        output = render_statistics(findings)
    elif statistics:
        out(render_statistics(findings), nl=False, err=True)
    if output_file:
        # The configuration's file was checked as it was read; a place the user names inside the tree
        # may hold a link or FIFO the tree planted there.
        in_tree = not output_named_by_user or _within(Path(output_file), sources.root)
        try:
            write_atomically(Path(output_file), output, in_tree=in_tree)
        except OSError as error:
            raise UsageError(f"{output_file}: cannot write the report ({error.strerror or error})") from None
    else:
        out(output, nl=False)
    if verbose:
        if config.source:
            stderr(f"config: {config.source}")
        if staged or diff_base or patch:
            stderr(f"{left_out} finding(s) outside the changed lines not reported")
        extraction = analysis.extraction
        stderr(f"read {extraction.files_read} files ({extraction.bytes_read / 1e6:.1f} MB), {len(analysis.facts)} with facts: "
                f"{extraction.parsed} parsed, {extraction.from_cache} from the cache")
        for phase, seconds in analysis.timings.items():
            stderr(f"{phase}: {seconds:.3f}s")
    sys.exit(EXIT_FINDINGS if findings and not exit_zero else 0)


def _within(path: Path, root: Path) -> bool:
    """Whether `path`, as named (its links not followed), lies in the tree at `root`."""
    named = os.path.abspath(path)
    return any(named.startswith(os.path.join(base, "")) for base in {os.path.abspath(root), os.path.realpath(root)})


def _ran(entry, selections, strict: bool) -> bool:
    """Whether a rule that ran could have made the baseline's `entry` again."""
    from kvmlint.rules.suppressions import UNUSED_SUPPRESSION_CODE

    if entry.code == UNUSED_SUPPRESSION_CODE:
        return strict
    return any(s.rule.code == entry.code and (s.symbols is None or entry.symbol in s.symbols) for s in selections)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _stale(number: int) -> str:
    if not number:
        return "no stale entries"
    entries = "1 entry no longer matches" if number == 1 else f"{number} entries no longer match"
    return f"{entries} a finding (stale: rewrite it with --write-baseline)"


def _identity(finding) -> tuple:
    """A finding as the next patch of a series still has it, wherever its lines moved."""
    return (finding.code, finding.path, finding.function, finding.symbol)


def _judge(sources, selections, jobs, era, cache, quiet):
    """The analysis of `sources` and the rules' result."""
    from kvmlint.analysis import analyse, run_rules
    from kvmlint.cli.progress import Progress, wanted as progress_wanted

    progress = Progress("parsing") if progress_wanted() and not quiet else None
    try:
        analysis = analyse(sources, jobs=jobs, era=era, on_progress=progress, cache=cache)
    finally:
        if progress is not None:
            progress.close()
    return analysis, run_rules(analysis, selections)


def _warnings(analysis, verbose: bool):
    """The run's warnings (and with `verbose` its notes), each a line for stderr."""
    from kvmlint.rules.reads import names_rules_read
    from kvmlint.source.extract import MOSTLY_UNPARSEABLE

    for path, problem in analysis.extraction.skipped:
        yield f"warning: {path}: {problem}"
    for build_file, problem in analysis.scope_resolver.warnings:
        yield f"warning: {build_file}: {problem}"
    relevant = None
    for facts in analysis.facts.values():
        for warning in facts.warnings:
            if warning.startswith(MOSTLY_UNPARSEABLE) and not verbose:
                relevant = names_rules_read(analysis) if relevant is None else relevant
                if not any(name in relevant or name.endswith("=") for name in facts.unparsed_names):
                    continue  # nothing a rule reads was lost; --verbose notes the errors
            yield f"warning: {facts.path}: {warning}"
    if verbose:
        for facts in analysis.facts.values():
            if facts.error_nodes and not any(w.startswith(MOSTLY_UNPARSEABLE) for w in facts.warnings):
                yield f"note: {facts.path}:{facts.first_error_line}: {facts.error_nodes} syntax error(s), analysed around them"
