"""GitHub Actions workflow commands: one annotation per finding.

`::warning file=F,line=L,...,title=T::message`, escaped as the Actions
runner expects: `%`, CR and LF everywhere, and also `:` and `,` in the
properties, where they would end a value.
"""

from __future__ import annotations

from kvmlint.reporters import printable
from kvmlint.reporters.text_format import notes_of


def render(report) -> str:
    return "".join(_annotation(finding) for finding in report.findings)


def _annotation(finding) -> str:
    level = "notice" if finding.confidence == "low" else "warning"
    properties = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in (
            ("file", printable(finding.path)),
            ("line", finding.line),
            ("col", finding.column),
            ("endLine", finding.end_line),
            ("endColumn", finding.end_column),
            ("title", f"{finding.code} {finding.name}"),
        )
    )
    message = "\n".join([finding.message, *notes_of(finding)])  # the first line is the annotation's summary
    return f"::{level} {properties}::{escape_data(message)}\n"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
