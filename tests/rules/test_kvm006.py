"""KVM006 kernel-irqchip-option: settings in Python tests (libcst) and C, against the model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint import rules
from kvmlint.analysis import analyse, run_rules
from kvmlint.model import IrqchipSettings, Model, machine_arch
from kvmlint.source.cmdline import find_settings
from kvmlint.source.discover import C_SUFFIXES, PYTHON_SUFFIXES, discover

TREE = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets" / "qemu-functional"
# "expect: KVM006 <arch>" on a fixture line: that line must be reported, for that arch
EXPECT = re.compile(r"expect: KVM006 (\w+)")


def run_kvmlint(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, cwd=cwd)


def check_json(tree: Path, *args: str) -> tuple[int, list[dict], str]:
    completed = run_kvmlint("check", "--select", "KVM006", "--format", "json", *args, str(tree))
    return completed.returncode, json.loads(completed.stdout)["findings"], completed.stderr


def expected_findings(tree: Path) -> set[tuple[str, int, str]]:
    expected = set()
    for path in sorted(tree.rglob("*")):
        if path.suffix not in (".py", ".c"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if match := EXPECT.search(line):
                expected.add((path.relative_to(tree).as_posix(), number, match.group(1)))
    return expected


def findings_of(tree: Path, era=None):
    sources = discover([str(tree)], suffixes=C_SUFFIXES + PYTHON_SUFFIXES)
    analysis = analyse(sources, jobs=1, era=era)
    return analysis, run_rules(analysis, rules.select(["KVM006"]))


def test_reports_exactly_the_marked_lines_with_the_arch():
    status, findings, _ = check_json(TREE)
    assert status == 1
    assert {(f["path"], f["line"], f["arch"]) for f in findings} == expected_findings(TREE)
    # invalid settings on arm, ppc and s390x are all there
    assert {f["arch"] for f in findings} == {"arm", "ppc", "s390x"}


def test_the_column_points_at_the_value_and_the_message_names_reason_and_accepted_values():
    _, findings, _ = check_json(TREE)
    for finding in findings:
        line = (TREE / finding["path"]).read_bytes().splitlines()[finding["line"] - 1]
        value = line[finding["column"] - 1:finding["end_column"] - 1].decode()
        assert re.search(rf"kernel[_-]irqchip={value}\b", finding["message"]), finding
    arm = next(f for f in findings if f["path"] == "tests/functional/aarch64/test_virt_kvm.py")
    assert arm["message"] == (
        "kernel_irqchip=split is not supported on arm: -machine kernel_irqchip=split is not supported on ARM; "
        "arm accepts: off, on (target: tests/functional/aarch64/)"
    )
    assert arm["replacement"] is None  # two accepted values: a person chooses


def test_each_spelling_and_context_is_read():
    analysis, _ = findings_of(TREE)
    options = analysis.facts["tests/functional/aarch64/test_virt_kvm.py"].irqchip_options
    assert [(o.span.line, o.spelling, o.context) for o in options] == [
        (12, "kernel_irqchip", "-machine"),  # add_args('-machine', '...') separate
        (15, "kernel-irqchip", "-machine"),  # joined
        (19, "kernel_irqchip", "-machine"),  # f-string with a constant value
        (22, "kernel-irqchip", "-accel"),
        (25, "kernel_irqchip", "-machine"),
        (26, "kernel-irqchip", "-accel"),
    ]  # not the f-string whose value is {mode}, not the log message


def test_a_suppression_comment_silences_a_python_finding():
    _, result = findings_of(TREE)
    assert [(f.path, f.line) for f in result.suppressed] == [("tests/functional/generic/test_machine_kvm.py", 30)]


def test_bad_python_is_a_one_line_warning():
    status, _, stderr = check_json(TREE)
    assert status == 1
    assert "kvmlint: warning: scripts/broken.py: not valid Python (line 3" in stderr
    assert "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "broken.py" in line]) == 1


def test_python_files_without_the_option_are_never_parsed(tmp_path, monkeypatch):
    from kvmlint.source import pyextract

    (tmp_path / "configure").write_text("")
    (tmp_path / "plain.py").write_text("print('kvm everywhere, but no option')\n")
    (tmp_path / "test_x86.py").write_text("ARGS = ['qemu-system-x86_64', '-M', 'q35,kernel_irqchip=on']\n")
    log = tmp_path / "parsed.log"  # parsing happens in a worker process: it writes down what it parses
    real = pyextract.extract
    monkeypatch.setattr(pyextract, "extract", lambda path, data: log.open("a").write(path + "\n") and real(path, data))
    findings_of(tmp_path)
    assert log.read_text().splitlines() == ["test_x86.py"]


def test_every_model_value_is_accepted_on_x86_current_and_split_is_not_in_2012():
    _, result = findings_of(TREE, era="current")
    assert not [f for f in result.findings if f.arch == "x86"]
    _, result = findings_of(TREE, era="2012")
    x86 = {(f.path, f.line) for f in result.findings if f.arch == "x86"}
    assert ("tests/functional/x86_64/test_split_irqchip.py", 11) in x86
    assert ("tests/qtest/irqchip-test.c", 23) in x86  # registered only for i386/x86_64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kernel_irqchip=split", [("split", "options", None)]),
        ("q35,kernel-irqchip=off", [("off", "options", "q35")]),
        ("-machine q35,kernel_irqchip=split -smp 2", [("split", "-machine", "q35")]),
        ("-M pseries,kernel_irqchip=split", [("split", "-machine", "pseries")]),
        ("-accel kvm,kernel-irqchip=split", [("split", "-accel", None)]),
        ("-machine kernel_irqchip=split is not supported on ARM.", []),  # an error message
        ("kernel_irqchip=split is not supported on LoongArch", []),
        ("KVM with kernel-irqchip=off", []),
        ("Try without kernel-irqchip or with kernel-irqchip=on|off", []),
        ("-machine kernel_irqchip=\ufffc", []),  # f"...={mode}": not a literal value
    ],
)
def test_only_command_line_shapes_are_settings(text, expected):
    assert [(s.value, s.context, s.machine(s.context)) for s in find_settings(text)] == expected


@pytest.mark.parametrize(
    ("machine", "arch"),
    [("q35", "x86"), ("pc-i440fx-9.2", "x86"), ("pseries-10.0", "ppc"), ("powernv9", "ppc"),
     ("s390-ccw-virtio", "s390x"), ("sbsa-ref", "arm"), ("virt-9.2", "arm"), ("virt", None),
     ("none", None), ("no-such-board", None)],
)
def test_machine_names_map_to_one_arch_or_none(machine, arch):
    assert machine_arch(machine) == arch


def only_on(settings: IrqchipSettings):
    """A model where arm accepts one value: the fix's single right value."""
    real = Model.valid_irqchip_settings

    def valid(self, arch):
        return settings if arch == "arm" else real(self, arch)

    return valid


def test_fix_rewrites_the_value_when_the_model_leaves_one(tmp_path, monkeypatch):
    from kvmlint.codemods import propose_changes
    from kvmlint.codemods.engine import plan, write

    tree = Path(shutil.copytree(TREE, tmp_path / "qemu"))
    monkeypatch.setattr(Model, "valid_irqchip_settings", only_on(
        IrqchipSettings(("on",), "on", {"split": "only the in-kernel GIC"}, {})
    ))
    python = tree / "tests/functional/aarch64/test_virt_kvm.py"
    c_file = tree / "tests/qtest/irqchip-test.c"
    before = {path: path.read_text() for path in (python, c_file)}

    analysis, result = findings_of(tree)
    arm = [f for f in result.findings if f.arch == "arm"]
    assert all(f.replacement == "on" and f.fix.applicability == "safe" for f in arm)
    proposed = propose_changes(analysis, result.findings)
    assert proposed.unfixable == []
    written = write(plan(tree, proposed.change_sets)).written
    assert "tests/functional/aarch64/test_virt_kvm.py" in written

    after = python.read_text()
    assert "self.vm.add_args('-machine', 'kernel_irqchip=on')  # expect: KVM006 arm" in after
    assert "f'-machine virt,gic-version={gic},kernel_irqchip=on -smp 2')  # expect: KVM006 arm" in after
    assert "'kvm,kernel-irqchip=on')" in after
    # only the values changed (off too: arm now rejects it); comments, quotes, prose and {mode} are kept
    assert after == before[python].replace("irqchip=split')", "irqchip=on')").replace(
        "kernel_irqchip=split -smp", "kernel_irqchip=on -smp").replace("kernel-irqchip=off'", "kernel-irqchip=on'")
    assert c_file.read_text() == before[c_file].replace(
        '"-machine virt,kernel_irqchip=split -accel kvm"', '"-machine virt,kernel_irqchip=on -accel kvm"')

    # fixing again changes nothing
    analysis, result = findings_of(tree)
    assert not [f for f in result.findings if f.arch == "arm"]


def test_no_fix_where_the_target_accepts_several_values(tmp_path):
    status_before = check_json(TREE)[0]
    tree = Path(shutil.copytree(TREE, tmp_path / "qemu"))
    completed = run_kvmlint("fix", "--rule", "KVM006", str(tree))
    assert "0 file(s) written" in completed.stdout
    assert status_before == 1
    for path in TREE.rglob("*.py"):
        assert (tree / path.relative_to(TREE)).read_bytes() == path.read_bytes()


def test_explain_has_the_house_sections():
    completed = run_kvmlint("explain", "kernel-irqchip-option")
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
        assert heading in completed.stdout


@pytest.mark.parametrize(
    "data",
    [b'x = "\xff kernel_irqchip=split"\n', b"# -*- coding: nosuch -*-\nx = 'kernel_irqchip=split'\n",
     b"x = 'kernel_irqchip=split' \\\n"],
)
def test_undecodable_or_broken_python_is_one_warning(data):
    from kvmlint.source.pyextract import extract

    facts = extract("tests/functional/ppc64/test_bad.py", data)
    assert len(facts.warnings) == 1 and "\n" not in facts.warnings[0] and facts.warnings[0].endswith("skipped")
    assert facts.irqchip_options == []
