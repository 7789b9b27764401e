"""Replace proxy uses of kvm_irqchip_in_kernel() with the precise predicate.

One change set per predicate, as QEMU's own series did: every site that asks
that question is rewritten, and when the tree lacks the predicate it is
introduced the way QEMU does it: a `bool kvm_<x>_allowed` flag in the KVM
core and in its stub file, its `extern` and a documented macro
`kvm_<x>_enabled()` in the KVM header (with the `(false)` macro for builds
without KVM), and the setter where the model says the value is decided: the
common irqchip creation when an in-kernel irqchip implies the predicate on
every architecture, else each architecture's own irqchip hook (or its arch
init when the predicate always holds there).

A name the fix would introduce is never declared twice.  A predicate the
tree already defines is used when it is a function or a function-like macro;
a flag the tree already declares as QEMU does (`extern bool` in the KVM
header, `bool` beside the irqchip flag's definitions) is reused, each
declaration it has kept and only the missing ones added.  Any other
declaration of either name (a static, a variable of another type or place,
a macro) means the name is taken: no fix, and the reason names the place.

Predicates introduced at one place (declarations beside the irqchip flag's,
macros beside the proxy's, setters in one hook) stand in the model's order,
also when they are introduced one run at a time: applying these fixes one by
one writes what one run writes.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from kvmlint.codemods import ctext
from kvmlint.codemods.engine import ChangeSet, Edit, line_ending, with_line_ending
from kvmlint.codemods.tree import arch_kvm_sources, file_reader
from kvmlint.errors import FixError
from kvmlint.prose import arch_name, join_words

DESCRIPTION = "Replace kvm_irqchip_in_kernel() in common code with the predicate the site really asks."
RULE = "KVM001"
SERIES_TITLE = "Ask the precise question instead of kvm_irqchip_in_kernel()"
SERIES_SUMMARY = (
    "common code stops using kvm_irqchip_in_kernel() as a proxy and asks the "
    "predicate it means, introducing it where the tree lacks it"
)

PROXY = "kvm_irqchip_in_kernel"
MACRO_VALUE = re.compile(r"\(\s*(\w+)\s*\)")
STUB_VALUES = ("false", "0")
LINE_LIMIT = 80  # QEMU's checkpatch limit
BODY_RETURN = re.compile(rb"^    return\b", re.MULTILINE)


def transform(analysis, findings):
    by_predicate: dict[str, list] = {}
    for finding in findings:
        by_predicate.setdefault(finding.fix.argument("predicate"), []).append(finding)
    order = list(analysis.model.predicates)
    change_sets, unfixable = [], []
    for predicate in sorted(by_predicate, key=lambda p: order.index(p) if p in order else len(order)):
        group = by_predicate[predicate]
        try:
            change_sets.append(_change_set(analysis, predicate, group))
        except FixError as error:
            unfixable.extend((finding, str(error)) for finding in group)
    return change_sets, unfixable


def _change_set(analysis, predicate: str, findings) -> ChangeSet:
    model = analysis.model
    read = file_reader(analysis.root)
    edits, checks = [], []
    for finding in findings:
        edits.append(_site_edit(analysis, finding, read))
        checks.append((finding.fix.argument("condition"), finding.fix.argument("new_condition")))
    existing = analysis.index.definitions_of(predicate)
    if existing and not any(_is_predicate(located.item) for located in existing):
        raise FixError(f"{_place(existing[0])}: {predicate} is already declared here ({existing[0].item.kind}), "
                       f"not as a predicate: introduce {predicate}() by hand")
    introduced = not existing
    setter_files: list[str] = []
    if introduced:
        added, setters = _introduce(analysis, predicate, read)
        edits.extend(added + setters)
        setter_files = sorted({e.path for e in setters})
    known = model.predicates.get(predicate)
    description = known.doc if known else predicate
    concept = known.title if known else predicate
    title = (
        f"kvm: Decouple '{concept}' from 'kernel irqchip'"
        if introduced
        else f"kvm: Use {predicate}() instead of {PROXY}()"
    )
    sites = "\n".join(f"- {f.path}: {f.evidence[0] if f.evidence else (f.function or '') + '()'}" for f in findings)
    these = "these sites" if len(findings) > 1 else "this site"
    what = f"Use {predicate}() instead at {these}:"
    if introduced:
        flag = model.predicates[predicate].flags.get(analysis.era)
        what = (
            f"Introduce {predicate}(), backed by a {flag} flag that "
            f"{join_words(setter_files)} set{'s' if len(setter_files) == 1 else ''}, "
            f"and use it at {these}:"
        )
    effects = _arch_effects(analysis, findings)
    body = (
        f"{PROXY}() says whether the user asked for an in-kernel irqchip, and what that "
        f"implies differs between architectures. Common code that asks it at the "
        f"{'sites' if len(findings) > 1 else 'site'} below really wants to know whether {description}. "
        f"On x86 the two go together; on other architectures they need not.\n\n"
        f"{what}\n\n{sites}\n\n{_effects_text(effects)}\n"
    )
    return ChangeSet(
        RULE, title, body, edits=edits, expression_checks=checks,
        subject_paths=tuple(sorted({f.path for f in findings})), arch_effects=tuple(effects.items()),
    )


def _arch_effects(analysis, findings) -> dict[str, str]:
    """Per architecture, in plain words, where the rewritten conditions now
    hold or fail ("" where nothing changes), as the model says."""
    from kvmlint.model.validation import validate

    # arch -> (where, "hold"/"fail") -> the configuration labels where that happens
    changes: dict[str, dict[tuple[str, str], list[str]]] = {arch: {} for arch in analysis.model.arches}
    as_needed = all(f.fix.applicability == "safe" for f in findings)  # safe: differences go as the site needs
    for finding in findings:
        old, new = finding.fix.argument("condition"), finding.fix.argument("new_condition")
        where = f"{finding.function}()" if finding.function else finding.path
        for result in validate(analysis.model, old, new).results:
            for difference in result.differences:
                outcome = "hold" if bool(difference.new) else "fail"
                labels = changes[result.arch].setdefault((where, outcome), [])
                if difference.configuration.label not in labels:
                    labels.append(difference.configuration.label)
    effects = {}
    for arch, by_place in changes.items():
        said = [
            f"with {_configurations(labels)}, the condition in {where} "
            + ("now holds" if outcome == "hold" else "no longer holds")
            for (where, outcome), labels in by_place.items()
        ]
        need = ", as the sites need" if len(findings) > 1 else ", as the site needs"
        effects[arch] = "; ".join(said) + (need if said and as_needed else "")
    return effects


def _configurations(labels: list[str]) -> str:
    """`kernel_irqchip=on or split and KVM_CAP_IRQCHIP`: the irqchip settings, and
    the facts every one of the configurations shares."""
    settings = list(dict.fromkeys(label.split(", ")[0] for label in labels))
    shared = set.intersection(*(set(label.split(", ")[1:]) for label in labels))
    facts = [part for part in labels[0].split(", ")[1:] if part in shared]
    text = settings[0] + "".join(f" or {s.split('=', 1)[-1]}" for s in settings[1:])
    return text + (f" and {' and '.join(facts)}" if facts else "")


def _effects_text(effects: dict[str, str]) -> str:
    """`Nothing changes on x86 or MIPS. On ARM and s390x, with ..., ...`: architectures
    the model says change alike are named together."""
    alike: dict[str, list[str]] = {}
    for arch, effect in effects.items():
        alike.setdefault(effect, []).append(arch_name(arch))
    sentences = [f"On {join_words(arches)}, {effect}." for effect, arches in alike.items() if effect]
    if alike.get(""):
        sentences.insert(0, f"Nothing changes on {join_words(alike[''], 'or')}.")
    return " ".join(sentences)


def _site_edit(analysis, finding, read) -> Edit:
    """Replace the proxy call; a line that grows past the limit is wrapped as QEMU's style wants."""
    start = _byte_offset(analysis, finding)
    data = read(finding.path)
    begin, end = ctext.line_start(data, start), ctext.line_end(data, start + 1)
    line = data[begin:end]
    column = start - begin  # bytes, not characters: the line may hold characters of several bytes
    rewritten = line[:column] + finding.replacement.encode() + line[column + len(PROXY + "()") :]
    wrapped = wrap_condition(rewritten.decode("utf-8", "surrogateescape"))
    return Edit(finding.path, begin, end, wrapped.encode("utf-8", "surrogateescape"))


def wrap_condition(line: str, limit: int = LINE_LIMIT) -> str:
    """Break a too-long condition line after its last `||`/`&&` that fits,
    continuing under the first character after the opening parenthesis."""
    body = line.rstrip("\n")
    if len(body) <= limit or "(" not in body:
        return line
    breaks = [m.end() for m in re.finditer(r" (\|\||&&) ", body) if m.end() - 1 <= limit]
    if not breaks:
        return line
    cut = breaks[-1]
    indent = " " * (body.index("(") + 1)
    return body[:cut].rstrip() + "\n" + indent + body[cut:].lstrip() + line[len(body) :]


def _byte_offset(analysis, finding) -> int:
    for located in analysis.index.references.get(PROXY, ()):
        span = located.item.span
        if located.path == finding.path and (span.line, span.column) == (finding.line, finding.column):
            return span.start_byte
    raise FixError(f"{finding.path}:{finding.line}: the proxy call is no longer where it was found")


@dataclass(frozen=True)
class _Anchors:
    header: str  # the KVM header holding the proxy's macro
    irqchip_flag: str  # the variable the proxy's macro reads (kvm_kernel_irqchip)


def _introduce(analysis, predicate: str, read) -> tuple[list[Edit], list[Edit]]:
    """The flag, its macros and declarations; and, apart, the edits that set it."""
    model = analysis.model
    flag = _flag(analysis, predicate)
    if not flag:
        raise FixError(f"the model has no flag for {predicate}() in the {analysis.era} era")
    anchors = _anchors(analysis)
    others = _other_flags(analysis, predicate)
    edits = []

    # The branch with KVM reads the flag; the branch without it says (false).
    macros = [m for m in analysis.index.definitions_of(PROXY, ("macro",)) if m.path == anchors.header]
    enabled = [m for m in macros if _macro_value(m.item.text) == anchors.irqchip_flag]
    disabled = [m for m in macros if _macro_value(m.item.text) in STUB_VALUES]
    if not enabled:
        raise FixError(f"{anchors.header}: no {PROXY}() macro to add {predicate}() beside")
    header = read(anchors.header)
    at = ctext.line_end(header, enabled[0].item.span.end_byte)
    entries = [(other, _documented(model, other, other_flag)) for other, other_flag in others.items()]
    edits.append(_placed(analysis, anchors.header, header, at, predicate, _documented(model, predicate, flag), entries))
    for macro in disabled:
        at = ctext.line_end(header, macro.item.span.end_byte)
        entries = [(other, f"#define {other}() (false)\n".encode()) for other in others]
        edits.append(_placed(analysis, anchors.header, header, at, predicate, f"#define {predicate}() (false)\n".encode(), entries))

    # `extern bool <flag>;` beside the irqchip flag's extern, `bool <flag>;` beside its definitions,
    # where the tree does not declare it so already.
    beside = analysis.index.definitions_of(anchors.irqchip_flag, ("extern", "variable"))
    declared = _flag_declarations(analysis, flag, predicate, {(located.path, located.item.kind) for located in beside})
    for located in beside:
        if (located.path, located.item.kind) in declared:
            continue
        data = read(located.path)
        at = ctext.line_end(data, located.item.span.end_byte)
        kind = "extern bool" if located.item.kind == "extern" else "bool"
        entries = [(other, f"{kind} {other_flag};\n".encode()) for other, other_flag in others.items()]
        edits.append(_placed(analysis, located.path, data, at, predicate, f"{kind} {flag};\n".encode(), entries))
    return edits, _setters(analysis, predicate, flag, anchors, read)


def _is_predicate(definition) -> bool:
    """A function, its prototype, or a function-like macro: something a site can call."""
    return definition.kind in ("function", "prototype") or (
        definition.kind == "macro" and re.match(r"#\s*define\s+\w+\(", definition.text) is not None)


def _flag_declarations(analysis, flag: str, predicate: str, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (file, kind) of each declaration of `flag` the tree has where the fix would add one.

    Another declaration of the name anywhere (static, not bool, elsewhere, a macro, a function)
    would clash with the one the fix adds, or mean something else: FixError.
    """
    declared = set()
    for located in analysis.index.definitions_of(flag):
        item = located.item
        as_the_fix_would = ((located.path, item.kind) in wanted and "static" not in item.storage
                            and re.search(r"\bbool\b", item.text) is not None)
        if not as_the_fix_would:
            raise FixError(f"{_place(located)}: {flag} is already declared here ({item.kind}); introducing "
                           f"{predicate}() would declare it again: introduce it by hand")
        declared.add((located.path, item.kind))
    return declared


def _place(located) -> str:
    return f"{located.path}:{located.item.span.line}"


def _flag(analysis, predicate: str) -> str | None:
    known = analysis.model.predicates.get(predicate)
    return known.flags.get(analysis.era) if known else None


def _other_flags(analysis, predicate: str) -> dict[str, str]:
    """Every other predicate with a flag in this era, and its flag: what an earlier fix may have introduced."""
    others = {other: _flag(analysis, other) for other in analysis.model.predicates if other != predicate}
    return {other: flag for other, flag in others.items() if flag}


def _documented(model, predicate: str, flag: str) -> bytes:
    """The documented macro the branch with KVM gets."""
    returns = textwrap.wrap(f"Returns: true if {model.predicates[predicate].doc}.", LINE_LIMIT - 3)
    return (
        f"\n/**\n * {predicate}:\n *\n" + "".join(f" * {line}\n" for line in returns)
        + f" */\n#define {predicate}() ({flag})\n"
    ).encode()


def _placed(analysis, path: str, data: bytes, at: int, predicate: str, text: bytes, entries) -> Edit:
    """Insert `text` at `at`, or, where earlier fixes put the `entries` of other predicates
    (each one's exact text) next to `at`, among them in the model's order."""
    ending = line_ending(data)
    entries = [(other, with_line_ending(entry, ending)) for other, entry in entries]
    run = []  # (predicate, start) of each entry of the unbroken run around `at`
    position = at
    while (found := next(((o, e) for o, e in entries if data.startswith(e, position)), None)) is not None:
        run.append((found[0], position))
        position += len(found[1])
    end_of_run, position = position, at
    while (found := next(((o, e) for o, e in entries if data.endswith(e, 0, position)), None)) is not None:
        position -= len(found[1])
        run.insert(0, (found[0], position))
    order = list(analysis.model.predicates)
    after = [start for other, start in run if order.index(other) > order.index(predicate)]
    offset = after[0] if after else end_of_run
    return Edit(path, offset, offset, text)


def _anchors(analysis) -> _Anchors:
    for located in analysis.index.definitions_of(PROXY, ("macro",)):
        value = _macro_value(located.item.text)
        if value and value not in STUB_VALUES:
            return _Anchors(header=located.path, irqchip_flag=value)
    raise FixError(f"no definition of {PROXY}() as a flag macro in the tree")


def _macro_value(text: str) -> str | None:
    """`#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)` -> kvm_kernel_irqchip."""
    body = text.split(")", 1)[1] if ")" in text else ""
    match = MACRO_VALUE.search(body)
    return match.group(1) if match else None


def _relation(model, arch: str, predicate: str) -> str:
    """How the model ties `predicate` to the irqchip on `arch`: "equal", "always", "never" or "other"."""
    pairs = [
        (model.predicate(arch, PROXY, config), model.predicate(arch, predicate, config))
        for config in model.configurations(arch)
    ]
    if all(value for _, value in pairs):
        return "always"
    if not any(value for _, value in pairs):
        return "never"
    if all(value == chip for chip, value in pairs):
        return "equal"
    return "other"


def _setters(analysis, predicate: str, flag: str, anchors: _Anchors, read) -> list[Edit]:
    """Set the flag where the model says its value is decided.

    When an in-kernel irqchip implies the predicate on every architecture, the
    common irqchip creation sets it; an architecture where it always holds
    also sets it in its arch init (an irqchip may not be created there), and
    an architecture where it equals the irqchip sets it in its own irqchip
    hook when no common setter does.
    """
    model = analysis.model
    implied_everywhere = all(
        value or not chip
        for arch in model.arches
        for config in model.configurations(arch)
        for chip, value in [(model.predicate(arch, PROXY, config), model.predicate(arch, predicate, config))]
    )
    edits = [_after_irqchip_set(analysis, anchors, predicate, flag, read)] if implied_everywhere else []
    sources = arch_kvm_sources(analysis)
    for arch, source in sorted((a, s) for a, s in sources.items() if a in model.arches):
        relation = _relation(model, arch, predicate)
        if relation == "never" or (relation == "equal" and implied_everywhere):
            continue
        if relation == "other":
            raise FixError(f"the model says {predicate}() on {arch} depends on more than the irqchip: set {flag} by hand")
        hook = _hook(analysis, source, "irq" if relation == "equal" else "init")
        data = read(source)
        at = _end_of_body(data, hook.item.span.end_byte)
        entries = [
            (other, _hook_setter(why, other, other_flag))
            for other, other_flag in _other_flags(analysis, predicate).items()
            for why in ("an in-kernel irqchip", f"KVM on {arch}")
        ]
        why = "an in-kernel irqchip" if relation == "equal" else f"KVM on {arch}"
        edits.append(_placed(analysis, source, data, at, predicate, _hook_setter(why, predicate, flag), entries))
    if not edits:
        raise FixError(f"no architecture in this tree sets {predicate}() by the model")
    return edits


def _hook_setter(why: str, predicate: str, flag: str) -> bytes:
    return f"    /* With {why}, {predicate}() holds. */\n    {flag} = true;\n".encode()


def _end_of_body(data: bytes, end: int) -> int:
    """Where a statement appended to a function still runs: before a final
    top-level `return`, else before the closing brace."""
    closing = ctext.line_start(data, end - 1)
    last_line = ctext.line_start(data, closing - 1)
    return last_line if BODY_RETURN.match(data, last_line) else closing


def _after_irqchip_set(analysis, anchors: _Anchors, predicate: str, flag: str, read) -> Edit:
    for located in analysis.index.assignments.get(anchors.irqchip_flag, ()):
        if located.item.value == "true" and analysis.scope(located.path).common:
            data = read(located.path)
            at = ctext.line_end(data, located.item.span.end_byte + 1)
            indent = data[ctext.line_start(data, located.item.span.start_byte) : located.item.span.start_byte].decode()

            def setter(name: str, name_flag: str) -> bytes:
                return f"{indent}/* An in-kernel irqchip implies {name}(). */\n{indent}{name_flag} = true;\n".encode()

            entries = [(other, setter(other, other_flag)) for other, other_flag in _other_flags(analysis, predicate).items()]
            return _placed(analysis, located.path, data, at, predicate, setter(predicate, flag), entries)
    raise FixError(f"no common code sets {anchors.irqchip_flag} = true to set {flag} beside")


def _hook(analysis, source: str, word: str):
    """The arch's kvm_arch_* function in `source` for irqchip set-up ("irq") or arch init ("init")."""
    candidates = [
        located
        for name, defined in sorted(analysis.index.definitions.items())
        if name.startswith("kvm_arch_") and (word in name if word == "irq" else name == "kvm_arch_init")
        for located in defined
        if located.path == source and located.item.kind == "function"
    ]
    if not candidates:
        raise FixError(f"{source}: no kvm_arch_* {word} hook to place the setter in")
    return candidates[0]
