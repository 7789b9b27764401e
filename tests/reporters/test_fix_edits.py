"""A finding's fix in `--format json` and `--format sarif` is exactly what `kvmlint fix` writes.

The appliers here are written from the formats alone and share nothing with
kvmlint's engine: ruff's JSON edits (row, 1-based byte column, end exclusive,
applied per file in reverse order of location, a missing file read as empty)
and SARIF 2.1.0 replacements (3.57: regions in the unmodified artifact, text
regions counted in the run's `columnKind`, binary regions in bytes).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, lay_out
from kvmlint.cli import cli

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"
BUILD_GATE = FIXTURES.parent / "build-gate"
# Every fixture tree with findings (as laid out: a base and its overlays), and the build gate's tree.
LAYOUTS = {
    "qemu-2012": ("qemu-2012",),
    "qemu-2019": ("qemu-2019",),
    "qemu-2020": ("qemu-2020",),
    "qemu-current": ("qemu-current",),
    "qemu-functional": ("qemu-functional",),
    "qemu-helpers": ("qemu-2012", "qemu-helpers"),
}
TREES = (*LAYOUTS, "build-gate")
# The trees some of whose findings have a fix (the others' findings have none: their fix must write nothing).
WITH_FIXES = ("qemu-2012", "qemu-current", "qemu-helpers", "build-gate")
IGNORED = shutil.ignore_patterns(".kvmlint_cache")


def tree(name: str, destination: Path) -> Path:
    if name == "build-gate":
        return Path(shutil.copytree(BUILD_GATE, destination, ignore=IGNORED))
    return lay_out(destination, *LAYOUTS[name])


def runner() -> CliRunner:
    """A runner whose stdout is the command's alone: click before 8.2 mixes stderr in unless told not to."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click 8.2 and later: stderr is apart already
        return CliRunner()


def kvmlint(*args: str) -> tuple[int, str]:
    result = runner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def check(root: Path, format_name: str, unsafe: bool) -> dict:
    code, output = kvmlint("check", "--format", format_name, *(["--unsafe-fixes"] if unsafe else []), str(root))
    assert code in (0, 1), output
    return json.loads(output)


def fix(root: Path, *args: str) -> None:
    code, output = kvmlint("fix", *args)
    assert code in (0, 1), output


def contents(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".kvmlint_cache" not in path.relative_to(root).parts
    }


def read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def apply_in_reverse(data, spans):
    """`spans` (start, end, content) of the unmodified `data`, none overlapping, applied from the last."""
    ordered = sorted(spans, key=lambda span: (span[0], span[1]))
    for (_, end, _), (start, _, _) in zip(ordered, ordered[1:]):
        assert end <= start, f"overlapping edits: {ordered}"
    for start, end, content in reversed(ordered):
        data = data[:start] + content + data[end:]
    return data


# ruff's JSON edits

def json_spans(data: bytes, edits: list[dict]) -> list[tuple[int, int, bytes]]:
    line_starts = [0] + [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]

    def offset(place: dict) -> int:
        return line_starts[place["row"] - 1] + place["column"] - 1

    return [(offset(e["location"]), offset(e["end_location"]), e["content"].encode("utf-8", "surrogateescape")) for e in edits]


def apply_json_fix(root: Path, fix_object: dict) -> None:
    by_path: dict[str, list[dict]] = {}
    for edit in fix_object["edits"]:
        by_path.setdefault(edit["path"], []).append(edit)
    for path, edits in by_path.items():
        data = read(root / path)
        write(root / path, apply_in_reverse(data, json_spans(data, edits)))


# SARIF replacements

def text_offset(text: str, line: int, column: int, column_kind: str) -> int:
    """The index into `text` of a 1-based line and column; lines end at \\r\\n or \\n (SARIF's default)."""
    starts = [0]
    index = 0
    while True:
        newline = text.find("\n", index)
        if newline < 0:
            break
        starts.append(newline + 1)
        index = newline + 1
    position = starts[line - 1]
    if column_kind == "unicodeCodePoints":
        return position + column - 1
    units = 0
    while units < column - 1:  # utf16CodeUnits
        units += 2 if ord(text[position]) > 0xFFFF else 1
        position += 1
    return position


def sarif_path(root: Path, run: dict, location: dict) -> Path:
    """The file of an artifactLocation relative to a base id, with that base at `root` (a copy of the checkout)."""
    assert urlparse(run["originalUriBaseIds"][location["uriBaseId"]]["uri"]).scheme == "file"
    return root / unquote(location["uri"])


def apply_sarif_fix(root: Path, run: dict, fix_object: dict) -> None:
    column_kind = run.get("columnKind", "utf16CodeUnits")
    targets = [change["artifactLocation"]["uri"] for change in fix_object["artifactChanges"]]
    assert len(targets) == len(set(targets)), "artifactChanges must name distinct artifacts (3.55.3)"
    for change in fix_object["artifactChanges"]:
        path = sarif_path(root, run, change["artifactLocation"])
        data = read(path)
        replacements = change["replacements"]
        if all("byteOffset" in r["deletedRegion"] for r in replacements):
            spans = [
                (r["deletedRegion"]["byteOffset"], r["deletedRegion"]["byteOffset"] + r["deletedRegion"]["byteLength"],
                 base64.b64decode(r.get("insertedContent", {}).get("binary", "")))
                for r in replacements
            ]
            write(path, apply_in_reverse(data, spans))
            continue
        text = data.decode("utf-8")
        spans = []
        for replacement in replacements:
            region = replacement["deletedRegion"]
            start = text_offset(text, region["startLine"], region["startColumn"], column_kind)
            end = text_offset(text, region["endLine"], region["endColumn"], column_kind)
            spans.append((start, end, replacement.get("insertedContent", {}).get("text", "")))
        write(path, apply_in_reverse(text, spans).encode("utf-8"))


def validate_sarif(document: dict) -> None:
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(document)


def sarif_fixes(document: dict) -> tuple[dict, list]:
    run = document["runs"][0]
    return run, [result.get("fixes") for result in run["results"]]


def one_finding_line(findings: list[dict], finding: dict) -> int | None:
    """A line of `finding` that no other finding of its rule spans: `fix FILE:LINE --select CODE` names it alone."""
    others = [f for f in findings if f is not finding and f["code"] == finding["code"] and f["path"] == finding["path"]]
    for line in range(finding["line"], finding["end_line"] + 1):
        if not any(o["line"] <= line <= o["end_line"] for o in others):
            return line
    return None


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe-fixes"])
@pytest.mark.parametrize("name", TREES)
def test_each_findings_fix_is_what_fix_file_line_writes_for_it(tmp_path, name, unsafe):
    original = tree(name, tmp_path / "original")
    document = check(original, "json", unsafe)
    sarif = check(original, "sarif", unsafe)
    validate_sarif(sarif)
    run, fixes = sarif_fixes(sarif)
    assert len(fixes) == len(document["findings"])
    compared = with_fix = 0
    for number, (finding, sarif_fix) in enumerate(zip(document["findings"], fixes)):
        assert (finding["fix"] is None) == (sarif_fix is None)
        line = one_finding_line(document["findings"], finding)
        if line is None:
            continue
        written = tree(name, tmp_path / f"{number}-fix")
        marked_unsafe = finding["fix"] is not None and finding["fix"]["applicability"] == "unsafe"
        fix(written, f"{written / finding['path']}:{line}", "--select", finding["code"],
            *(["--unsafe-fixes"] if unsafe or marked_unsafe else []))
        compared += 1
        if finding["fix"] is None:
            assert contents(written) == contents(original), f"{finding['path']}:{line} has no fix, yet fix writes one"
            continue
        assert finding["fix"]["applicability"] == sarif_fix[0]["properties"]["applicability"]
        from_json = tree(name, tmp_path / f"{number}-json")
        apply_json_fix(from_json, finding["fix"])
        assert contents(from_json) == contents(written), f"{finding['path']}:{line}: JSON edits"
        from_sarif = tree(name, tmp_path / f"{number}-sarif")
        apply_sarif_fix(from_sarif, run, sarif_fix[0])
        assert contents(from_sarif) == contents(written), f"{finding['path']}:{line}: SARIF fix"
        with_fix += 1
    assert compared >= 1 and (with_fix >= 1) == (name in WITH_FIXES)


def test_every_fixture_tree_with_findings_is_compared(tmp_path):
    """A fixture tree added later is compared too, or has no finding."""
    for folder in sorted(path.name for path in FIXTURES.iterdir() if path.is_dir()):
        if folder not in LAYOUTS:
            laid_out = lay_out(tmp_path / folder, folder)
            assert check(laid_out, "json", True)["findings"] == [], f"{folder}: add it to LAYOUTS"


def fixes_to_apply(document: dict, format_name: str, unsafe: bool) -> list[dict]:
    if format_name == "json":
        found = [f["fix"] for f in document["findings"] if f["fix"]]
        return [f for f in found if unsafe or f["applicability"] == "safe"]
    _, found = sarif_fixes(document)
    return [f[0] for f in found if f and (unsafe or f[0]["properties"]["applicability"] == "safe")]


def touched_spans(root: Path, run: dict | None, fix_object: dict) -> dict[str, list[tuple[int, int]]]:
    """The spans (in characters or bytes of the current file) a fix replaces, per file."""
    spans: dict[str, list[tuple[int, int]]] = {}
    if run is None:
        for edit in fix_object["edits"]:
            start, end, _ = json_spans(read(root / edit["path"]), [edit])[0]
            spans.setdefault(edit["path"], []).append((start, end))
        return spans
    for change in fix_object["artifactChanges"]:
        path = sarif_path(root, run, change["artifactLocation"])
        text = read(path).decode("utf-8", "surrogateescape")
        for replacement in change["replacements"]:
            region = replacement["deletedRegion"]
            if "byteOffset" in region:
                span = (region["byteOffset"], region["byteOffset"] + region["byteLength"])
            else:
                span = (text_offset(text, region["startLine"], region["startColumn"], run["columnKind"]),
                        text_offset(text, region["endLine"], region["endColumn"], run["columnKind"]))
            spans.setdefault(path.relative_to(root).as_posix(), []).append(span)
    return spans


def apply_as_ruff_does(root: Path, format_name: str, unsafe: bool) -> int:
    """ruff's way with fixes that may overlap: in each pass, apply every fix that touches no span an
    earlier fix of the pass touches (all against the pass's files), then check again; until none is left."""
    for passes in range(1, 20):
        document = check(root, format_name, unsafe)
        run = document["runs"][0] if format_name == "sarif" else None
        taken: dict[str, list[tuple[int, int]]] = {}
        chosen = []
        for fix_object in fixes_to_apply(document, format_name, unsafe):
            spans = touched_spans(root, run, fix_object)
            if any(start <= other_end and other_start <= end
                   for path, file_spans in spans.items() for start, end in file_spans
                   for other_start, other_end in taken.get(path, [])):
                continue
            for path, file_spans in spans.items():
                taken.setdefault(path, []).extend(file_spans)
            chosen.append(fix_object)
        if not chosen:
            return passes
        if run is None:
            apply_json_fix(root, {"edits": [edit for fix_object in chosen for edit in fix_object["edits"]]})
        else:
            by_artifact: dict[str, dict] = {}
            for fix_object in chosen:
                for change in fix_object["artifactChanges"]:
                    merged = by_artifact.setdefault(change["artifactLocation"]["uri"],
                                                    {"artifactLocation": change["artifactLocation"], "replacements": []})
                    merged["replacements"].extend(change["replacements"])
            apply_sarif_fix(root, run, {"artifactChanges": list(by_artifact.values())})
    raise AssertionError("the fixes never ran out")


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe-fixes"])
@pytest.mark.parametrize("format_name", ["json", "sarif"])
@pytest.mark.parametrize("name", TREES)
def test_applying_every_fix_as_ruff_does_gives_what_fix_writes(tmp_path, name, format_name, unsafe):
    """Overlapping fixes applied one at a time, with a check in between, write what one `kvmlint fix` writes;
    predicates introduced one by one stand in the model's order, as one run puts them."""
    written = tree(name, tmp_path / "fix")
    fix(written, str(written), *(["--unsafe-fixes"] if unsafe else []))
    applied = tree(name, tmp_path / "applied")
    apply_as_ruff_does(applied, format_name, unsafe)
    if name != "qemu-helpers":
        assert contents(applied) == contents(written)
        return
    # Two helpers move into target-i386/kvm.c, each before its first function: one at a time, the one
    # moved second comes first.  Every other file, and every line, is the same.
    differing = [path for path, digest in contents(applied).items() if contents(written).get(path) != digest]
    assert differing == ["target-i386/kvm.c"] and contents(applied).keys() == contents(written).keys()
    lines = [sorted((root / differing[0]).read_text().splitlines()) for root in (applied, written)]
    assert lines[0] == lines[1]


def test_the_2012_rename_fix_renames_and_keeps_the_function(tmp_path):
    """KVM003's fix once replaced the function's whole region with the new name."""
    root = tree("qemu-2012", tmp_path / "t")
    before = (root / "kvm-all.c").read_bytes()
    sarif = check(root, "sarif", False)
    run, fixes = sarif_fixes(sarif)
    rename = next(f[0] for r, f in zip(run["results"], fixes) if r["ruleId"] == "KVM003")
    replacements = [r for c in rename["artifactChanges"] for r in c["replacements"]]
    assert all(r["deletedRegion"]["startLine"] == r["deletedRegion"]["endLine"] for r in replacements)
    assert {r["insertedContent"]["text"] for r in replacements} == {"kvm_set_irq"}
    apply_sarif_fix(root, run, rename)
    after = (root / "kvm-all.c").read_bytes()
    assert after == before.replace(b"kvm_irqchip_set_irq", b"kvm_set_irq")


def test_two_sites_that_introduce_one_predicate_each_carry_the_introduction(tmp_path):
    """Each fix is its finding's alone; applying both at once introduces the predicate twice,
    which is why overlapping fixes are applied one at a time."""
    root = tree("qemu-2012", tmp_path / "t")
    document = check(root, "json", False)
    sites = [f for f in document["findings"] if f["path"] == "hw/virtio-pci.c" and f["fix"]]
    assert len(sites) == 2
    introduced = [{(e["path"], e["content"]) for e in site["fix"]["edits"] if e["path"] == "kvm.h"} for site in sites]
    assert introduced[0] == introduced[1] and any("kvm_msi_via_irqfd_enabled()" in c for _, c in introduced[0])
    apply_json_fix(root, {"edits": [e for site in sites for e in site["fix"]["edits"]]})
    header = (root / "kvm.h").read_text()
    assert header.count("extern bool kvm_msi_via_irqfd_allowed;") == 2


def assert_both_fixes_write(root, written, site, run, sarif_fix, tmp_path):
    """`site`'s JSON edits and its SARIF fix, each applied to a copy of `root`, give the tree `fix` wrote."""
    for name, apply in (("json", lambda r: apply_json_fix(r, site["fix"])), ("sarif", lambda r: apply_sarif_fix(r, run, sarif_fix))):
        copy = Path(shutil.copytree(root, tmp_path / name, ignore=IGNORED))
        apply(copy)
        assert contents(copy) == contents(written), name


def test_columns_count_bytes_in_json_and_code_points_in_sarif(tmp_path):
    """On a line with a two-byte, a three-byte and a four-byte (two UTF-16 units) character before the proxy."""
    root = tree("qemu-2012", tmp_path / "t")
    cpus = root / "cpus.c"
    text = cpus.read_text()
    assert text.count("kvm_irqchip_in_kernel()") == 1
    cpus.write_text(text.replace("kvm_irqchip_in_kernel()", "/* \u00e9\u20ac\U0001F600 */ kvm_irqchip_in_kernel()"))
    document = check(root, "json", False)
    site = next(f for f in document["findings"] if f["path"] == "cpus.c")
    sarif = check(root, "sarif", False)
    validate_sarif(sarif)
    run, fixes = sarif_fixes(sarif)
    assert run["columnKind"] == "unicodeCodePoints"
    sarif_fix = fixes[document["findings"].index(site)][0]
    written = tree("qemu-2012", tmp_path / "fix")
    (written / "cpus.c").write_bytes(cpus.read_bytes())
    fix(written, f"{written / 'cpus.c'}:{site['line']}")
    assert_both_fixes_write(root, written, site, run, sarif_fix, tmp_path)


def test_a_file_that_is_not_utf8_gets_binary_replacements(tmp_path):
    root = tree("qemu-2012", tmp_path / "t")
    cpus = root / "cpus.c"
    data = cpus.read_bytes()
    cpus.write_bytes(data.replace(b"kvm_irqchip_in_kernel()", b"/* caf\xe9 */ kvm_irqchip_in_kernel()", 1))
    document = check(root, "json", False)
    site = next(f for f in document["findings"] if f["path"] == "cpus.c")
    assert any("caf\udce9" in e["content"] for e in site["fix"]["edits"])  # the byte, as a surrogate escape
    sarif = check(root, "sarif", False)
    validate_sarif(sarif)
    run, fixes = sarif_fixes(sarif)
    sarif_fix = fixes[document["findings"].index(site)][0]
    cpus_change = next(c for c in sarif_fix["artifactChanges"] if c["artifactLocation"]["uri"] == "cpus.c")
    assert all("byteOffset" in r["deletedRegion"] for r in cpus_change["replacements"])
    written = Path(shutil.copytree(root, tmp_path / "fix", ignore=IGNORED))
    fix(written, f"{written / 'cpus.c'}:{site['line']}")
    assert_both_fixes_write(root, written, site, run, sarif_fix, tmp_path)


def test_a_finding_without_fix_carries_none(tmp_path):
    root = tree("qemu-2012", tmp_path / "t")
    document = check(root, "json", True)
    unfixable = [f for f in document["findings"] if f["path"] in ("hw/msi.c", "hw/msix.c")]
    assert unfixable and all(f["fix"] is None for f in unfixable)
    run, fixes = sarif_fixes(check(root, "sarif", True))
    for result, found in zip(run["results"], fixes):
        if result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] in ("hw/msi.c", "hw/msix.c"):
            assert found is None and "fix" not in result["properties"]


def test_a_check_of_part_of_the_tree_carries_the_fix_of_the_whole(tmp_path):
    """`fix` reads the whole checkout; a check of one folder, with files excluded, gets its fixes from there."""
    root = tree("qemu-2012", tmp_path / "t")
    whole = {(f["path"], f["line"]): f["fix"] for f in check(root, "json", False)["findings"]}
    code, output = kvmlint("check", "--format", "json", "--exclude", "kvm-all.c", str(root / "hw"))
    assert code == 1
    part = json.loads(output)["findings"]
    assert any(f["fix"] for f in part)
    for finding in part:
        fix_object = whole[("hw/" + finding["path"], finding["line"])]
        if fix_object is None:
            assert finding["fix"] is None
            continue
        in_part = [{**e, "path": os.path.normpath(os.path.join("hw", e["path"]))} for e in finding["fix"]["edits"]]
        assert in_part == fix_object["edits"]


@pytest.mark.skipif(not os.environ.get("KVMLINT_QEMU_TREE"), reason="set KVMLINT_QEMU_TREE to a QEMU tree")
@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe-fixes"])
def test_real_tree_each_fix_is_what_fix_writes(tmp_path, unsafe):
    """On a real QEMU tree (a copy of $KVMLINT_QEMU_TREE): every finding's JSON edits and SARIF fix,
    applied alone, give what `kvmlint fix FILE:LINE --select CODE` writes for it (with --unsafe-fixes
    for a fix marked unsafe, and for every fix of `check --unsafe-fixes`); for a finding without one,
    `fix --unsafe-fixes` writes nothing."""
    root = Path(shutil.copytree(os.environ["KVMLINT_QEMU_TREE"], tmp_path / "qemu", symlinks=True, ignore=IGNORED))
    document = check(root, "json", unsafe)
    sarif = check(root, "sarif", unsafe)
    validate_sarif(sarif)
    run, fixes = sarif_fixes(sarif)
    compared = 0
    for finding, sarif_fix in zip(document["findings"], fixes):
        line = one_finding_line(document["findings"], finding)
        if line is None:
            continue
        if finding["fix"] is None:
            code, output = kvmlint("fix", f"{root / finding['path']}:{line}", "--select", finding["code"], "--unsafe-fixes")
            assert code in (0, 1) and "0 file(s) written" in output, f"{finding['path']}:{line}: {output}"
            continue
        paths = {e["path"] for e in finding["fix"]["edits"]}
        saved = {path: (root / path).read_bytes() if (root / path).exists() else None for path in paths}
        expected = {}
        for name, apply in (("json", lambda: apply_json_fix(root, finding["fix"])),
                            ("sarif", lambda: apply_sarif_fix(root, run, sarif_fix[0]))):
            apply()
            expected[name] = {path: read(root / path) for path in paths}
            restore(root, saved)
        flag = ["--unsafe-fixes"] if unsafe or finding["fix"]["applicability"] == "unsafe" else []
        code, output = kvmlint("fix", f"{root / finding['path']}:{line}", "--select", finding["code"], *flag)
        assert code in (0, 1), output
        written = {line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("wrote ")}
        assert written == paths, finding
        after = {path: read(root / path) for path in paths}
        assert expected["json"] == after, f"{finding['path']}:{line}: JSON edits"
        assert expected["sarif"] == after, f"{finding['path']}:{line}: SARIF fix"
        restore(root, saved)
        compared += 1
    assert compared >= 1


def restore(root: Path, saved: dict) -> None:
    for path, data in saved.items():
        if data is None:
            (root / path).unlink(missing_ok=True)
        else:
            (root / path).write_bytes(data)


def test_a_change_that_drops_a_parenthesis_is_refused(tmp_path):
    """tree-sitter reads `if (a || b() {` with a MISSING `)` and no ERROR node: the engine counts both."""
    from kvmlint.codemods.engine import ChangeSet, Edit, plan

    source = b"int f(int a)\n{\n    if (a || b()) {\n        return 0;\n    }\n    return 1;\n}\n"
    (tmp_path / "f.c").write_bytes(source)
    at = source.index(b")) {")
    planned = plan(tmp_path, [ChangeSet("KVM001", "t", "b", edits=[Edit("f.c", at, at + 1, b"")])])
    assert not planned.accepted and "syntax errors" in planned.refused[0].reason
