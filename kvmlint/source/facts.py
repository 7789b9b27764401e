"""Plain, picklable facts that a parser worker extracts from one C or Python file.

Workers parse with tree-sitter and return only these records, so that the
main process never needs a syntax tree to index, check or report.
Lines and columns are 1-based; columns count bytes, as compilers do.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields


def _slotted_dataclass(**options):
    """`dataclass(slots=True, **options)`.

    Python 3.9's dataclasses lacks `slots`: there the dataclass is rebuilt with
    its fields as slots, as later versions do (the defaults live in __init__)."""
    if sys.version_info >= (3, 10):
        return dataclass(slots=True, **options)

    def slotted(cls):
        cls = dataclass(**options)(cls)
        names = tuple(item.name for item in fields(cls))
        namespace = {key: value for key, value in cls.__dict__.items() if key not in (*names, "__dict__", "__weakref__")}
        rebuilt = type(cls)(cls.__name__, cls.__bases__, {**namespace, "__slots__": names})
        rebuilt.__qualname__ = cls.__qualname__
        return rebuilt

    return slotted


def _record(cls):
    """A slotted, hashable dataclass: a value nobody changes once extracted.

    Not `frozen`: unpickling a frozen slotted record goes through a Python
    __setstate__ per object, and a warm run loads 30,000 of them (current QEMU:
    26 ms as plain slots, 40 ms with the fastest such __setstate__, 70 ms with
    the one dataclasses provides)."""
    return _slotted_dataclass(unsafe_hash=True)(cls)


def _share_names(record) -> None:
    """Intern a record's strings and tuples of strings.  A file's records repeat a few
    names thousands of times; interned, each is one object, and stays one after the
    trip from the worker (pickle writes an object once per message) and in the cache."""
    for name in record.__slots__:
        value = getattr(record, name)
        if type(value) is str:
            setattr(record, name, sys.intern(value))
        elif type(value) is tuple and value and type(value[0]) is str:
            setattr(record, name, tuple(map(sys.intern, value)))


@_record
class Span:
    start_byte: int
    end_byte: int
    line: int
    column: int
    end_line: int
    end_column: int


@_record
class SiteContext:
    """What surrounds one use of a predicate: the raw material for evidence.

    `statement` is how the use is consumed: "if", "while", "assert",
    "return", "ternary", "macro" (inside a #define body) or "expression".
    `condition` is the whole controlling expression that holds the use
    (the if/while condition, the assert argument, the returned value),
    so a rewrite can be validated as a whole expression.
    """

    function: str | None
    statement: str
    negated: bool
    condition: str
    condition_span: Span
    guarded_calls: tuple[str, ...] = ()
    guarded_returns: tuple[str, ...] = ()
    guarded_identifiers: tuple[str, ...] = ()
    function_calls: tuple[str, ...] = ()
    function_identifiers: tuple[str, ...] = ()
    preprocessor: tuple[str, ...] = ()

    __post_init__ = _share_names


@_record
class Reference:
    """A use of a KVM symbol: a call, or a bare identifier (function pointer, flag)."""

    symbol: str
    span: Span
    kind: str  # "call" | "identifier"
    function: str | None
    macro: str | None = None  # the #define whose body holds this use
    context: SiteContext | None = None
    preprocessor: tuple[str, ...] = ()  # enclosing #if conditions, outermost first
    result: str = ""  # a call's: how its value is used (kvmlint/source/site_context.py result_use)

    __post_init__ = _share_names


@_record
class Definition:
    """A definition or declaration of a KVM symbol at file level."""

    name: str
    kind: str  # "function" | "prototype" | "macro" | "variable" | "extern"
    span: Span
    text: str
    storage: tuple[str, ...] = ()  # "static", "inline", "extern"
    preprocessor: tuple[str, ...] = ()  # enclosing #if/#ifdef conditions, outermost first
    capabilities: tuple[str, ...] = ()  # KVM_CAP_* names the body tests
    identifiers: tuple[str, ...] = ()  # every name the body uses (not struct fields)
    field_access: bool = False  # the body reads a struct member (`s->x`, `s.x`)
    fields: tuple[str, ...] = ()  # the struct members the body names (`s->xsave` gives "xsave")

    __post_init__ = _share_names


@_record
class Assignment:
    """`kvm_<flag> = <value>;` on a KVM flag: how a tree sets the model's facts."""

    name: str
    value: str
    span: Span
    function: str | None
    preprocessor: tuple[str, ...] = ()


@_record
class Include:
    target: str  # what stands between the quotes or angle brackets
    span: Span


@_record
class StringLiteral:
    text: str  # the literal's contents, escapes left as written
    span: Span
    function: str | None


@_record
class ArchBranch:
    """An `if` whose condition tests qtest_get_arch() for some targets (see kvmlint.source.qtest_arch)."""

    start_byte: int  # of the branch's body
    end_byte: int
    targets: frozenset[str]
    names: frozenset[str]  # identifiers used in the branch: the test functions it registers


@_record
class ArchHint:
    """Something in a Python test that names the target it runs: what KVM006 reads the arch from."""

    kind: str  # "target" (a QEMU target name: x86_64, aarch64) | "machine" (a machine type: q35, virt)
    name: str
    origin: str  # where it was seen, for the message: "tests/functional/aarch64/", "set_machine('q35')"
    # nearer first: 0 the test's folder, 1 the option's own -machine list, then 2, 3, ... the
    # enclosing functions and classes from the innermost out, the file last
    rank: int


@_record
class IrqchipOption:
    """A literal `kernel_irqchip=V` / `kernel-irqchip=V` setting in a Python test (read with libcst)."""

    value: str
    spelling: str  # "kernel_irqchip" | "kernel-irqchip"
    context: str  # "-machine" | "-accel" | "options" (an option list whose option is not visible)
    span: Span  # of the value, inside its string literal
    hints: tuple[ArchHint, ...] = ()


@_slotted_dataclass()
class FileFacts:
    path: str  # relative, forward slashes
    size: int
    # hex sha256 of the bytes parsed: a fix edits a file only while it still has them
    content_sha256: str = ""
    error_nodes: int = 0
    first_error_line: int | None = None
    references: list[Reference] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    # `s->flag = ...KVM_CAP_X...;`: a state member set from a kernel capability (name = the member)
    capability_assignments: list[Assignment] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    strings: list[StringLiteral] = field(default_factory=list)
    # The file's qtest_get_arch() branches, read only when it holds a kernel_irqchip string
    arch_branches: list[ArchBranch] = field(default_factory=list)
    irqchip_options: list[IrqchipOption] = field(default_factory=list)  # Python files only
    # File-level names only this file can use: static functions and variables,
    # struct and typedef definitions.  A body that uses one cannot move elsewhere.
    private_names: frozenset[str] = frozenset()
    # line -> codes silenced there ("*" for all), from `kvmlint: ignore[...]` comments
    suppressions: dict[int, frozenset[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # In a mostly unparseable file: KVM names and kernel_irqchip options inside the
    # syntax errors that no reference or definition accounts for.
    unparsed_names: frozenset[str] = frozenset()
