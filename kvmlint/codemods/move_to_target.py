"""Move a helper of one architecture out of the common KVM files, whole.

Definition -> the target's KVM source; prototype -> the target's KVM header
(created in the house style when missing); stub -> the target's stub file
(created with its build-file line when missing); the include added wherever
the helper is now needed; the common definition, prototype and stub deleted.
Everything about the target is read from the tree: which file holds the
architecture's `kvm_arch_*` hooks, how sibling targets name and guard their
KVM headers and spell their includes, and how the build files build stubs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kvmlint.codemods import ctext, retype_bool
from kvmlint.codemods.engine import ChangeSet, Edit, NewFile, Replacement
from kvmlint.codemods.tree import arch_kvm_sources, file_reader
from kvmlint.errors import FixError
from kvmlint.prose import arch_name, arch_specific, join_words
from kvmlint.rules.kvm002_arch_helper_in_common import is_common_kvm_file
from kvmlint.rules.kvm004_int_predicate import int_predicate, retype_safety
from kvmlint.source.c_syntax import parse
from kvmlint.source.discover import tree_files

DESCRIPTION = "Move a helper of one architecture from the common KVM files into that target."
RULE = "KVM002"

SERIES_TITLE = "Move architecture-specific helpers into their targets"
SERIES_SUMMARY = (
    "helpers whose concept belongs to one architecture move from the common KVM "
    "files into that target's source, header and stub file"
)
MAKE_KVM_LINE = re.compile(rb"^obj-\$\((CONFIG_KVM)\)\s*\+=.*\bkvm\.o\b.*\n", re.MULTILINE)
MESON_KVM_SET = re.compile(rb"^(\w+)\.add_all\(when:\s*'CONFIG_KVM',\s*if_true:\s*\w+\)", re.MULTILINE)


@dataclass(frozen=True)
class TargetLayout:
    kvm_source: str  # the target's KVM source, e.g. target-i386/kvm.c
    directory: str
    target_name: str  # i386
    header: str  # the target's KVM header (may not exist yet)
    header_exists: bool
    header_spelling: str  # how callers write its #include
    stub: str  # the target's KVM stub file (may not exist yet)
    stub_exists: bool


def transform(analysis, findings):
    # Files created by an earlier move in this run: later moves to the same target edit them.
    planned: dict[str, bytes] = {}
    # Every common copy this run removes, so that adjacent removals keep the spacing one would.
    removed: dict[str, list[tuple[int, int]]] = {}
    for finding in findings:
        for located in _common_copies(analysis, finding.fix.argument("symbol"))[1]:
            removed.setdefault(located.path, []).append((located.item.span.start_byte, located.item.span.end_byte))
    change_sets, unfixable = [], []
    for finding in findings:
        try:
            change_sets.extend(transform_one(analysis, finding, planned, removed))
        except FixError as error:
            unfixable.append((finding, str(error)))
    return change_sets, unfixable


def _common_copies(analysis, symbol: str):
    """(every definition, the common copies to remove, implementation, prototypes, stubs)."""
    definitions = analysis.index.definitions_of(symbol)
    common = [d for d in definitions if is_common_kvm_file(analysis, d.path)]
    implementation = _one(d for d in common if d.item.kind == "function" and "stub" not in d.path)
    prototypes = [d for d in common if d.item.kind == "prototype" and d.path.endswith(".h")]
    stubs = [d for d in common if d.item.kind == "function" and "stub" in d.path]
    removed = [*([implementation] if implementation else []), *prototypes, *stubs]
    return definitions, removed, implementation, prototypes, stubs


def transform_one(analysis, finding, planned: dict[str, bytes], removed=None) -> list[ChangeSet]:
    symbol, arch = finding.fix.argument("symbol"), finding.fix.argument("arch")
    read = file_reader(analysis.root, planned)
    definitions, to_remove, implementation, prototypes, stubs = _common_copies(analysis, symbol)
    common = [d for d in definitions if is_common_kvm_file(analysis, d.path)]
    defined_in_target = [d.path for d in definitions if d.item.kind == "function" and d not in common]
    if implementation is None and not (prototypes and defined_in_target):
        raise FixError(f"{symbol}: no single common definition to move")
    layout = _layout(analysis, arch)
    edits: list[Edit] = []
    new_files: list[NewFile] = []
    written: list[tuple[str, bytes]] = []  # (file, text) the helper's declarations are written as

    for located in to_remove:
        span = located.item.span
        others = [r for r in (removed or {}).get(located.path, []) if r != (span.start_byte, span.end_byte)]
        edits.append(_removal(located.path, read(located.path), span.start_byte, span.end_byte, others))
    if prototypes:
        # The prototype moves with its doc comment.
        first = prototypes[0]
        prototype = ctext.block_text(read(first.path), first.item.span.start_byte, first.item.span.end_byte).decode().strip()
    if implementation is not None:
        source_data = read(layout.kvm_source)
        moved = ctext.block_text(read(implementation.path), implementation.item.span.start_byte, implementation.item.span.end_byte)
        anchor = ctext.first_function_start(source_data)
        anchor = len(source_data) if anchor is None else anchor
        edits.append(Edit(layout.kvm_source, anchor, anchor, moved + b"\n"))
        written.append((layout.kvm_source, moved))
        if not prototypes:
            prototype = ctext.declaration_text(moved.decode()).strip()
    origin = prototypes[0].path if prototypes else implementation.path

    written.append((layout.header, prototype.encode()))
    kvm_branches = None
    if layout.header in planned or layout.header_exists:
        header_data = read(layout.header)
        kvm_branches = _config_kvm_branches(header_data)
        preamble = _type_preamble(analysis, prototype, origin, layout, header_data, read)
        if preamble:
            offset, after_include = _preamble_offset(header_data)
            edits.append(Edit(layout.header, offset, offset, (preamble if after_include else preamble + "\n").encode()))
        if kvm_branches is not None:
            # The header's own style: prototypes with KVM, static inline stubs without.
            with_kvm, without_kvm = kvm_branches
            edits.append(Edit(layout.header, with_kvm, with_kvm, f"{prototype}\n".encode()))
            for stub in stubs:
                inline = b"static inline " + ctext.block_text(read(stub.path), stub.item.span.start_byte, stub.item.span.end_byte)
                edits.append(Edit(layout.header, without_kvm, without_kvm, inline))
                written.append((layout.header, inline))
        else:
            endif = ctext.final_endif(header_data)
            if endif is None:
                raise FixError(f"{layout.header}: no include guard to add the prototype inside")
            edits.append(Edit(layout.header, endif, endif, f"{prototype}\n\n".encode()))
    else:
        preamble = _type_preamble(analysis, prototype, origin, layout, None, read)
        content = _new_header(analysis, layout, arch, (preamble + "\n" if preamble else "") + prototype, origin, read)
        new_files.append(NewFile(layout.header, content))
        planned[layout.header] = content

    if stubs and kvm_branches is None:
        stub_text = ctext.block_text(read(stubs[0].path), stubs[0].item.span.start_byte, stubs[0].item.span.end_byte)
        written.append((layout.stub, stub_text))
        if layout.stub in planned or layout.stub_exists:
            stub_data = read(layout.stub)
            edits.append(Edit(layout.stub, len(stub_data), len(stub_data), b"\n" + stub_text))
        else:
            content = _new_stub(analysis, layout, arch, stubs[0].path, stub_text, read)
            new_files.append(NewFile(layout.stub, content))
            planned[layout.stub] = content
            build_line = _build_line(analysis, layout, stubs[0].path, read)
            if build_line is not None:
                edits.append(build_line)

    after = Path(prototypes[0].path).name if prototypes else None
    needing = {use.path for use in analysis.index.callers_of(symbol) if not is_common_kvm_file(analysis, use.path)}
    needing |= {layout.kvm_source} if implementation is not None else set(defined_in_target)
    including = []
    for path in sorted(needing - {layout.header, layout.stub}):
        edit = ctext.include_edit(path, read(path), layout.header_spelling, after)
        if edit is not None:
            edits.append(edit)
            including.append(path)

    moved = ChangeSet(
        code=RULE,
        title=f"kvm: Move {symbol}() to {layout.directory}",
        body=_move_message(finding, symbol, arch, layout, common, implementation, stubs, new_files, including),
        applicability=finding.fix.applicability,
        edits=edits,
        new_files=new_files,
        subject_paths=tuple(sorted({layout.kvm_source, layout.header} | ({layout.stub} if stubs else set()))),
    )
    retyped = _retype_after_move(analysis, symbol, definitions, written) if implementation is not None else None
    return [moved, retyped] if retyped else [moved]


def _retype_after_move(analysis, symbol: str, definitions, written: list[tuple[str, bytes]]) -> ChangeSet | None:
    """KVM004's retype of a moved `int` predicate, as QEMU's own move did it: a change set of its
    own, right after the move, safe or unsafe as KVM004 judges the callers (the move keeps them)."""
    if not int_predicate(symbol, definitions):
        return None
    applicability, why = retype_safety(analysis, symbol, definitions)
    if applicability is None:
        return None
    return retype_bool.follow_up(symbol, written, applicability, "" if applicability == "safe" else why)


def _move_message(finding, symbol, arch, layout, common, implementation, stubs, new_files, including) -> str:
    """Why the helper moves, where each part goes, which files gain the include."""
    created = {new_file.path for new_file in new_files}

    def place(path: str) -> str:
        return f"the new {path}" if path in created else path

    kinds = sorted({d.item.kind for d in common})
    declared = "defined and declared" if "function" in kinds and "prototype" in kinds else "defined" if "function" in kinds else "declared"
    places = join_words(sorted({d.path for d in common}))
    if implementation is not None:
        parts = [f"the definition to {layout.kvm_source}", f"the prototype to {place(layout.header)}"]
        if stubs:
            parts.append(f"the stub for builds without KVM to {place(layout.stub)}")
        what = f"Move {join_words(parts)}."
    else:
        what = f"Move its prototype to {place(layout.header)}, beside its definition."
    if layout.stub in created:
        what += " The new stub file is built exactly when the common one is."
    if including:
        what += f" {join_words(including)} now include{'s' if len(including) == 1 else ''} {layout.header_spelling}."
    return (
        f"{symbol}() is {arch_specific(arch)} helper: {finding.fix.argument('reason')}, "
        f"and only {arch_name(arch)} code calls it. Yet it is {declared} in {places}, "
        f"which every architecture shares.\n\n{what}\n\nNo functional change.\n"
    )


def _config_kvm_branches(header: bytes) -> tuple[int, int] | None:
    """Where a header's `#ifdef CONFIG_KVM` block ends its KVM branch (the `#else`
    line) and its no-KVM branch (the `#endif` line), when it has both."""
    for node in parse(header).root_node.named_children:
        for block in [node, *node.named_children]:
            name = block.child_by_field_name("name") if block.type == "preproc_ifdef" else None
            alternative = block.child_by_field_name("alternative") if name is not None else None
            if name is None or name.text != b"CONFIG_KVM" or block.children[0].type != "#ifdef":
                continue
            if alternative is None or alternative.type != "preproc_else":
                continue
            endif = block.children[-1]
            return ctext.line_start(header, alternative.start_byte), ctext.line_start(header, endif.start_byte)
    return None


def _one(items):
    items = list(items)
    return items[0] if len(items) == 1 else None


def _layout(analysis, arch: str) -> TargetLayout:
    """Find the target's KVM source, header and stub from the code itself."""
    kvm_source = arch_kvm_sources(analysis).get(arch)
    if kvm_source is None:
        raise FixError(f"no {arch} KVM source (a file defining kvm_arch_* hooks) in the tree")
    directory = kvm_source.rsplit("/", 1)[0]
    target_name = _target_name(directory)
    root = analysis.root
    header = f"{directory}/kvm_{target_name}.h"
    header_exists = (root / header).exists()
    stub = f"{directory}/kvm-stub.c"
    return TargetLayout(
        kvm_source=kvm_source,
        directory=directory,
        target_name=target_name,
        header=header,
        header_exists=header_exists,
        header_spelling=_spelling(analysis, header),
        stub=stub,
        stub_exists=(root / stub).exists(),
    )


def _target_name(directory: str) -> str:
    parts = directory.split("/")
    if parts[0].startswith("target-"):
        return parts[0][len("target-") :]
    if parts[0] == "target" and len(parts) > 1:
        return parts[1]
    return parts[-1]


def _spelling(analysis, header: str) -> str:
    """How includes already spell this header; a new header is included by its name,
    as sibling target headers are (the target directory is on the include path)."""
    basename = header.rsplit("/", 1)[-1]
    spellings = Counter(
        include.target
        for facts in analysis.facts.values()
        for include in facts.includes
        if include.target.rsplit("/", 1)[-1] == basename
    )
    return spellings.most_common(1)[0][0] if spellings else basename


def _sibling_headers(analysis) -> list[str]:
    """Other targets' KVM headers: `kvm_<target>.h` files in target directories."""
    pattern = re.compile(r"(^|/)kvm_[a-z0-9]+\.h$")
    return [p for p in analysis.sources.files if p.startswith("target") and pattern.search(p)]


def _guard(analysis, layout: TargetLayout, read) -> str:
    """The include guard in the style most neighbouring headers use (the new
    header's directory, and other targets' KVM headers): `QEMU_<NAME>_H`,
    the path spelled out (`TARGET_ARM_<NAME>_H`) or bare `<NAME>_H`.  Guards
    with a leading underscore are reserved identifiers in C and count for
    nothing; without a usable neighbour, QEMU's `QEMU_<NAME>_H`."""
    neighbours = [p for p in analysis.sources.files if p.rsplit("/", 1)[0] == layout.directory and p.endswith(".h")]
    styles = Counter()
    for path in sorted(set(neighbours) | set(_sibling_headers(analysis))):
        guard = ctext.guard_name(read(path))
        if guard and not guard.startswith("_"):
            styles[_guard_style(path, guard)] += 1
    styles.pop(None, None)
    style = styles.most_common(1)[0][0] if styles else "qemu"
    return _guard_in_style(layout.header, style)


def _guard_in_style(path: str, style: str) -> str:
    if style == "path":
        return _identifier(path.removesuffix(".h")) + "_H"
    stem = _identifier(path.rsplit("/", 1)[-1].removesuffix(".h"))
    return f"QEMU_{stem}_H" if style == "qemu" else f"{stem}_H"


def _guard_style(path: str, guard: str) -> str | None:
    for style in ("path", "qemu", "bare"):
        if guard == _guard_in_style(path, style):
            return style
    stem = _identifier(path.rsplit("/", 1)[-1].removesuffix(".h"))
    # QEMU_I386_CPU_QOM_H for cpu-qom.h: QEMU's prefix, with the target's name in it
    return "qemu" if guard.startswith("QEMU_") and stem in guard else None


def _identifier(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).upper()


def _licence(analysis, layout: TargetLayout, origin: str, read) -> list[str]:
    """Moved code keeps the licence of the file it comes from (else a sibling header's).
    Where the target's files declare theirs with an SPDX identifier, a new file
    does too, without the boilerplate (today's checkpatch asks for that)."""
    lines = next((found for path in [origin, *sorted(_sibling_headers(analysis))] if (found := ctext.license_lines(read(path)))), [])
    lines = lines or [" * This work is licensed under the terms of the GNU GPL, version 2 or later.",
                      " * See the COPYING file in the top-level directory."]
    neighbours = [p for p in analysis.sources.files if p.rsplit("/", 1)[0] == layout.directory]
    if any(SPDX in read(path)[:SPDX_HEAD_BYTES] for path in neighbours):
        return [f" * SPDX-License-Identifier: {_spdx_identifier(' '.join(lines))}"]
    return lines


SPDX = b"SPDX-License-Identifier:"
SPDX_HEAD_BYTES = 1024


def _spdx_identifier(licence: str) -> str:
    """The SPDX identifier QEMU uses for a licence sentence (GPL-2.0-or-later by default)."""
    declared = re.search(r"SPDX-License-Identifier:\s*(\S+)", licence)
    if declared:
        return declared.group(1)
    lesser = "LGPL" in licence or "Lesser" in licence
    later = "or later" in licence or "any later" in licence
    version = "2.1" if lesser and "2.1" in licence else "2.0"
    return f"{'LGPL' if lesser else 'GPL'}-{version}-{'or-later' if later else 'only'}"


def _comment_block(title: str, licence: list[str]) -> str:
    return "/*\n * " + title + "\n *\n" + "\n".join(licence) + "\n *\n */\n"


def _new_header(analysis, layout: TargetLayout, arch: str, prototype: str, origin: str, read) -> bytes:
    guard = _guard(analysis, layout, read)
    title = f"QEMU KVM support -- {arch_name(arch)} specific functions."
    return (
        _comment_block(title, _licence(analysis, layout, origin, read))
        + f"\n#ifndef {guard}\n#define {guard}\n\n{prototype}\n\n#endif /* {guard} */\n"
    ).encode()


def _new_stub(analysis, layout: TargetLayout, arch: str, common_stub: str, stub_text: bytes, read) -> bytes:
    first_include = ctext.INCLUDE_LINE.search(read(common_stub))
    includes = ""
    if first_include:
        includes += first_include.group(0).decode(errors="replace")
    includes += f'#include "{layout.header.rsplit("/", 1)[-1]}"\n'
    title = f"QEMU KVM {arch_name(arch)} specific function stubs"
    return (_comment_block(title, _licence(analysis, layout, common_stub, read)) + includes + "\n" + stub_text.decode(errors="replace")).encode()


def _build_line(analysis, layout: TargetLayout, common_stub: str, read) -> Edit | None:
    """Build the new stub exactly when the common stub is built, in the target's build file
    (None when that build file already names it)."""
    root = analysis.root
    makefile = f"{layout.directory}/Makefile.objs"
    meson = f"{layout.directory}/meson.build"
    for build_file, name in ((makefile, b"kvm-stub.o"), (meson, b"'kvm-stub.c'")):
        if (root / build_file).exists() and name in read(build_file):
            return None
    if (root / makefile).exists():
        data = read(makefile)
        kvm_line = MAKE_KVM_LINE.search(data)
        variable = _stub_condition(root, common_stub, read)
        if kvm_line is None or variable is None:
            raise FixError(f"{makefile}: cannot tell where to build {layout.stub}")
        return Edit(makefile, kvm_line.end(), kvm_line.end(), f"obj-$({variable}) += kvm-stub.o\n".encode())
    if (root / meson).exists():
        data = read(meson)
        outer = MESON_KVM_SET.search(data)
        if outer is None:
            raise FixError(f"{meson}: cannot tell which source set builds {layout.directory} without KVM")
        line = f"\n{outer.group(1).decode()}.add(when: 'CONFIG_KVM', if_false: files('kvm-stub.c'))\n".encode()
        return Edit(meson, len(data), len(data), line)
    raise FixError(f"no build file in {layout.directory} to build {layout.stub}")


def _stub_condition(root: Path, common_stub: str, read) -> str | None:
    """The make variable under which the common stub is built (CONFIG_NO_KVM in 2012)."""
    stub_object = re.escape(Path(common_stub).stem.encode()) + rb"\.o"
    pattern = re.compile(rb"^obj-\$\((\w+)\)\s*\+=.*\b" + stub_object + rb"\b", re.MULTILINE)
    for makefile in sorted(root.glob("Makefile*")):
        try:
            match = pattern.search(read(makefile.name))
        except FixError:  # a Makefile* that is not a readable regular file says nothing
            continue
        if match:
            return match.group(1).decode()
    return None


def _removal(path: str, data: bytes, start: int, end: int, others: list[tuple[int, int]]) -> Edit:
    """ctext.removal, aware of adjacent definitions this run also removes: a run of them
    goes as one removal would, taking one blank line only when one stands before the run."""
    begin, finish = ctext.leading_comment_start(data, start), ctext.line_end(data, end)
    lines = {(ctext.leading_comment_start(data, a), ctext.line_end(data, b)) for a, b in others}
    if any(a == finish for a, _ in lines):
        return Edit(path, begin, finish, b"")  # a later neighbour ends the run
    run_begin = begin
    while (previous := next((a for a, b in lines if b == run_begin), None)) is not None:
        run_begin = previous
    if run_begin == begin:
        return ctext.removal(path, data, start, end)
    blank_before = run_begin == 0 or not data[ctext.line_start(data, run_begin - 1) : run_begin].strip()
    after = data[finish : ctext.line_end(data, finish + 1)]
    if blank_before and after and not after.strip():
        finish = ctext.line_end(data, finish + 1)
    return Edit(path, begin, finish, b"")


# Types every QEMU file has from its first include (the C library's and the compiler's).
STANDARD_TYPES = re.compile(r"^(?:u?int(?:8|16|32|64|ptr|max)_t|s?size_t|ptrdiff_t|off_t|bool|_Bool|va_list|FILE)$")


def _prototype_types(prototype: str) -> tuple[list[str], list[str]]:
    """(typedef names, struct/union/enum tags) a declaration uses."""
    names, tags = [], []
    stack = [parse(prototype.encode()).root_node]
    while stack:
        node = stack.pop()
        if node.type in ("struct_specifier", "union_specifier", "enum_specifier"):
            name = node.child_by_field_name("name")
            if name is not None and node.child_by_field_name("body") is None:
                tags.append(f"{node.type.split('_')[0]} {name.text.decode()}")
            continue
        if node.type == "type_identifier" and not STANDARD_TYPES.match(node.text.decode()):
            names.append(node.text.decode())
        stack.extend(node.children)
    return sorted(set(names)), sorted(set(tags))


def _type_preamble(analysis, prototype: str, origin: str, layout: TargetLayout, header: bytes | None, read) -> str:
    """The includes and forward declarations a moved prototype's types need in the target
    header (those the header does not have yet): a typedef name needs the header that
    defines it, a struct used by pointer only its forward declaration."""
    names, tags = _prototype_types(prototype)
    have = header.decode(errors="replace") if header is not None else ""
    includes = []
    for name in names:
        defining = _defining_header(analysis, name, origin, layout, read)
        if defining is None:
            raise FixError(f"{layout.header}: no header of the tree defines {name}, which the prototype uses")
        if defining == layout.header or re.search(rf"\b{re.escape(name)}\b", have):
            continue
        line = f'#include "{_spelling(analysis, defining)}"\n'
        if line not in includes:
            includes.append(line)
    forwards = [f"{tag};\n" for tag in tags if not re.search(rf"\b{re.escape(tag)}\s*[;{{]", have)]
    return "".join(includes) + ("\n" if includes and forwards else "") + "".join(forwards)


def _defining_header(analysis, name: str, origin: str, layout: TargetLayout, read) -> str | None:
    """The header that typedefs `name`: the prototype's old header first, then the target's own
    headers, then the one most often included."""
    pattern = re.compile(rb"typedef[^;{]*\b" + re.escape(name.encode()) + rb"\s*;|\}\s*" + re.escape(name.encode()) + rb"\s*;")
    headers = [p for p in analysis.sources.files if p.endswith(".h")]
    if not headers:  # a run on some files only: the rest of the tree still holds the types
        headers = [p for p in tree_files(analysis.root)[0] if p.endswith(".h")]
    popularity = Counter(
        include.target.rsplit("/", 1)[-1] for facts in analysis.facts.values() for include in facts.includes
    )
    found = []
    for path in headers:
        try:
            data = read(path)
        except FixError:
            continue
        if name.encode() in data and pattern.search(data):
            found.append(path)
    if not found:
        return None
    return min(found, key=lambda p: (p != origin, not p.startswith(layout.directory + "/"), -popularity[p.rsplit("/", 1)[-1]], p))


def _preamble_offset(header: bytes) -> tuple[int, bool]:
    """Where includes go in an existing header: after its last #include (True), else after
    its guard and the blank line below it (False)."""
    includes = list(ctext.INCLUDE_LINE.finditer(header))
    if includes:
        return includes[-1].end(), True
    guard = ctext.GUARD.search(header)
    if guard is None:
        return 0, False
    end = ctext.line_end(header, guard.end())
    following = ctext.line_end(header, end + 1)
    return (following if end < len(header) and not header[end:following].strip() else end), False
