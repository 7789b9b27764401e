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
from kvmlint.reporters.fix_edits import edit_places


def finding_to_dict(finding, path: str, fix: dict | None = None) -> dict:
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
        # What `kvmlint fix FILE:LINE` writes for this finding, as ruff's edits; null when it writes nothing.
        "fix": fix,
    }


def fix_to_dict(report, fix) -> dict:
    """ruff's `fix` shape (applicability, message, edits), each edit with the path it is in:
    rows and columns (1-based, columns in bytes) of the checked file, end exclusive; a file
    the fix creates is one edit inserting its whole content at row 1, column 1."""
    return {
        "applicability": fix.applicability,
        "message": fix.description,
        "description": fix.description,  # kvmlint's name for it before the edits came
        "edits": [edit for changed in fix.files for edit in _edits(report, changed)],
    }


def _edits(report, changed) -> list[dict]:
    path = exact_path(report.display_name(changed.path))
    return [
        {
            "content": edit.replacement.decode("utf-8", "surrogateescape"),
            "location": {"row": start_line, "column": edit.start - start_of_line + 1},
            "end_location": {"row": end_line, "column": edit.end - end_of_line + 1},
            "path": path,
        }
        for edit, ((start_line, start_of_line), (end_line, end_of_line)) in zip(changed.edits, edit_places(changed))
    ]


def render(report) -> str:
    document = {
        "version": __version__,
        "findings": [
            finding_to_dict(f, exact_path(report.display_path(f)), fix_to_dict(report, report.fixes[f]) if f in report.fixes else None)
            for f in report.findings
        ],
        "summary": {
            "files": report.files,
            "parsed": report.parsed,
            "findings": len(report.findings),
            "seconds": round(report.seconds, 3),
        },
    }
    return json.dumps(document, indent=2) + "\n"
