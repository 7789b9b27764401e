"""`path:line:col: CODE [name] message`, one finding a line."""

from __future__ import annotations

BOLD, RED, DIM, RESET = "\033[1m", "\033[31m", "\033[2m", "\033[0m"


def render(report) -> str:
    lines = [_line(report, finding) for finding in report.findings]
    if report.show_suppressed:
        lines.extend(_line(report, finding, suppressed=True) for finding in report.suppressed)
    return "\n".join(lines) + ("\n" if lines else "")


def _line(report, finding, suppressed: bool = False) -> str:
    location = f"{report.display_path(finding)}:{finding.line}:{finding.column}:"
    code = f"{finding.code} [{finding.name}]"
    note = " (suppressed)" if suppressed else ""
    if report.color:
        location = f"{BOLD}{location}{RESET}"
        code = f"{DIM}{code}{RESET}" if suppressed else f"{RED}{code}{RESET}"
    return f"{location} {code} {finding.message}{note}"
