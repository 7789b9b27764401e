"""The cross-file index (index stage): definitions, references and flag assignments of every KVM symbol."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from kvmlint.source.facts import Assignment, Definition, FileFacts, Reference


@dataclass(frozen=True)
class Located:
    path: str
    item: Definition | Reference | Assignment


@dataclass
class Index:
    definitions: dict[str, list[Located]] = field(default_factory=lambda: defaultdict(list))
    references: dict[str, list[Located]] = field(default_factory=lambda: defaultdict(list))
    assignments: dict[str, list[Located]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, facts: dict[str, FileFacts]) -> "Index":
        index = cls()
        for path, file_facts in facts.items():
            for definition in file_facts.definitions:
                index.definitions[definition.name].append(Located(path, definition))
            for reference in file_facts.references:
                index.references[reference.symbol].append(Located(path, reference))
            for assignment in file_facts.assignments:
                index.assignments[assignment.name].append(Located(path, assignment))
        return index

    def setters(self, scope_of) -> list[tuple[str, str, str, str, int, str | None]]:
        """Every flag assignment, once per place it is built for: (where: "common" or an
        architecture, flag, value, path, line, function), as the model's drift check reads them.
        `scope_of(path)` is the file's scope."""
        found = []
        for located in (a for assignments in self.assignments.values() for a in assignments):
            scope = scope_of(located.path)
            assignment = located.item
            for where in ["common"] if scope.common else sorted(scope.arches):
                found.append((where, assignment.name, assignment.value, located.path, assignment.span.line,
                              assignment.function))
        return found

    def defined_symbols(self) -> set[str]:
        return set(self.definitions)

    def definitions_of(self, name: str, kinds: tuple[str, ...] | None = None) -> list[Located]:
        return [d for d in self.definitions.get(name, ()) if kinds is None or d.item.kind in kinds]

    def callers_of(self, name: str) -> list[Located]:
        """Uses of `name` (calls and bare identifiers), except those a C source file's
        own `#define name` takes over: such a file means its macro, not the API."""
        own_macros: dict[str, list[Definition]] = defaultdict(list)
        for located in self.definitions.get(name, ()):
            if located.item.kind == "macro" and located.path.endswith(".c"):
                own_macros[located.path].append(located.item)
        return [
            use for use in self.references.get(name, ())
            if not any(_takes_over(macro, use.item) for macro in own_macros.get(use.path, ()))
        ]


def _takes_over(macro: Definition, use: Reference) -> bool:
    """The macro is defined before the use, and wherever the use is compiled (its #if branch or an outer one)."""
    conditions = macro.preprocessor
    return macro.span.start_byte < use.span.start_byte and use.preprocessor[: len(conditions)] == conditions
