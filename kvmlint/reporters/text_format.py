"""`path:line:col: CODE [name] message`, then the finding's evidence, details
and per-architecture model verdict on indented lines (as compilers and ruff
show notes), so the first line stays short.  Every name, message and note is
written for a terminal (kvmlint.terminal): a finding is exactly its lines."""

from __future__ import annotations

from kvmlint.terminal import for_terminal

BOLD, RED, DIM, RESET = "\033[1m", "\033[31m", "\033[2m", "\033[0m"
NOTE_INDENT = "    "


def render(report) -> str:
    lines = [_finding(report, finding) for finding in report.findings]
    if report.show_suppressed:
        lines.extend(_finding(report, finding, suppressed=True) for finding in report.suppressed)
    if report.findings:
        lines.append(summary(report.findings))
    return "\n".join(lines) + ("\n" if lines else "")


def summary(findings) -> str:
    """`Found 3 findings (1 fixable with `kvmlint fix`, 1 more with --unsafe-fixes).`, as ruff ends."""
    safe = sum(1 for f in findings if f.fix is not None and f.fix.safe)
    unsafe = sum(1 for f in findings if f.fix is not None and not f.fix.safe)
    counted = f"Found {len(findings)} finding{'s' * (len(findings) != 1)}"
    fixable = [f"{safe} fixable with `kvmlint fix`"] if safe else []
    if unsafe:
        fixable.append(f"{unsafe} {'more ' if safe else ''}with `kvmlint fix --unsafe-fixes`")
    return counted + (f" ({', '.join(fixable)})" if fixable else " (none fixable automatically)") + "."


def _finding(report, finding, suppressed: bool = False) -> str:
    notes = "".join(f"\n{NOTE_INDENT}{for_terminal(note)}" for note in notes_of(finding))
    return headline(report, finding, suppressed) + notes


def headline(report, finding, suppressed: bool = False) -> str:
    location = f"{for_terminal(report.location_path(finding))}:{finding.line}:{finding.column}:"
    code = f"{finding.code} [{finding.name}]"
    note = " (suppressed)" if suppressed else ""
    if report.color:
        location = f"{BOLD}{location}{RESET}"
        code = f"{DIM}{code}{RESET}" if suppressed else f"{RED}{code}{RESET}"
    return f"{location} {code} {for_terminal(finding.message)}{note}"


def _fix_note(fix) -> str:
    if fix.safe:
        return f"fix: {fix.description} (safe: `kvmlint fix`)"
    reason = f"unsafe: {fix.unsafe_reason}" if fix.unsafe_reason else "unsafe"
    return f"fix: {fix.description} ({reason}; `kvmlint fix --unsafe-fixes`)"


def notes_of(finding) -> list[str]:
    """The lines under a finding: evidence, details, then the model's verdict per architecture."""
    unchanged = [arch for arch, verdict in finding.verdicts if verdict.startswith("identical")]
    return [
        *(f"evidence: {sentence}" for sentence in finding.evidence),
        *finding.details,
        *([_fix_note(finding.fix)] if finding.fix else []),
        *([f"model: no change on {', '.join(unchanged)}"] if unchanged else []),
        *(f"model on {arch}: {verdict}" for arch, verdict in finding.verdicts if arch not in unchanged),
    ]
