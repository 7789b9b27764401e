"""GitLab Code Quality: a JSON list of issues, shown in merge requests.

Each fingerprint hashes what the finding is about and the text of its line,
not its line number, so GitLab keeps tracking a finding that edits elsewhere
move, and marks only really new ones as new.
"""

from __future__ import annotations

import json

from kvmlint.reporters import exact_path
from kvmlint.reporters.text_format import notes_of


def render(report) -> str:
    issues = [
        {
            "description": f"{finding.code} [{finding.name}] {finding.message}",
            "check_name": finding.code,
            "fingerprint": report.fingerprints[finding],
            "severity": "minor" if finding.confidence == "low" else "major",
            "location": {"path": exact_path(finding.path), "lines": {"begin": finding.line, "end": finding.end_line}},
            **({"content": {"body": "".join(f"- {note}\n" for note in notes_of(finding))}} if notes_of(finding) else {}),
        }
        for finding in report.findings
    ]
    return json.dumps(issues, indent=2) + "\n"
