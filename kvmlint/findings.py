"""What rules produce and reporters print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fix:
    applicability: str  # "safe" | "unsafe"
    description: str
    # Rule-specific arguments for the rule's code-mod (what to replace, with what).
    arguments: tuple[tuple[str, Any], ...] = ()
    unsafe_reason: str = ""  # why a person must look at an unsafe fix, as a clause

    @property
    def safe(self) -> bool:
        return self.applicability == "safe"

    def argument(self, key: str, default=None):
        return dict(self.arguments).get(key, default)


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    path: str  # root-relative, forward slashes
    line: int
    column: int
    end_line: int
    end_column: int
    message: str
    function: str | None = None
    symbol: str | None = None
    replacement: str | None = None
    arch: str | None = None
    confidence: str = "high"  # "high" | "medium" | "low"
    fix: Fix | None = None
    evidence: tuple[str, ...] = field(default=(), compare=False)
    # Shown under the one-line message: why the rule applies here, candidates, ...
    details: tuple[str, ...] = field(default=(), compare=False)
    # (arch, what the model says a fix changes there)
    verdicts: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def sort_key(self):
        return (self.path, self.line, self.column, self.code)
