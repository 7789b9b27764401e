"""`path:line:col: CODE [name] message`: one line a finding, for grep and editors."""

from __future__ import annotations

from kvmlint.reporters.text_format import headline


def render(report) -> str:
    lines = [headline(report, finding) for finding in report.findings]
    if report.show_suppressed:
        lines.extend(headline(report, finding, suppressed=True) for finding in report.suppressed)
    return "\n".join(lines) + ("\n" if lines else "")
