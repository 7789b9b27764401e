"""The stable JSON contract that other tools read.

`path` is the file's exact name, relative to where the tree was named: as it
is, except that a backslash is written `\\\\` and each byte that is not UTF-8
`\\xNN` (`reporters.exact_path`), so that every name is valid Unicode and
reads back to its bytes.
"""

from __future__ import annotations

import json

from kvmlint import __version__
from kvmlint.reporters import exact_path


def finding_to_dict(finding, path: str) -> dict:
    return {
        "code": finding.code,
        "name": finding.name,
        "path": path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "function": finding.function,
        "symbol": finding.symbol,
        "message": finding.message,
        "replacement": finding.replacement,
        "arch": finding.arch,
        "confidence": finding.confidence,
        # Added in 0.2: what the one-line message leaves out.
        "evidence": list(finding.evidence),
        "details": list(finding.details),
        "verdicts": dict(finding.verdicts),
        "fix": (
            {"applicability": finding.fix.applicability, "description": finding.fix.description}
            if finding.fix
            else None
        ),
    }


def render(report) -> str:
    document = {
        "version": __version__,
        "findings": [finding_to_dict(f, exact_path(report.display_path(f))) for f in report.findings],
        "summary": {
            "files": report.files,
            "parsed": report.parsed,
            "findings": len(report.findings),
            "seconds": round(report.seconds, 3),
        },
    }
    return json.dumps(document, indent=2) + "\n"
