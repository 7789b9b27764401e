"""Report formats for CI: SARIF 2.1.0, GitLab Code Quality, GitHub annotations, statistics."""

import json
import os
import stat
from pathlib import Path

import jsonschema
import pytest

from kvmlint.codemods.engine import Edit, FileEdits
from kvmlint.findings import Finding, Fix
from kvmlint.reporters import Report, render, render_statistics, write_atomically
from kvmlint.reporters.github_format import escape_data, escape_property
from kvmlint.validation.finding_fixes import FindingFix

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"

CPUS_C = """\
static bool cpu_thread_is_idle(CPUArchState *env)
{
    if (!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()) {
        return false;
    }
    /* \u00e9t\u00e9 */ if (kvm_irqchip_in_kernel()) { idle(); }
    return true;
}
"""


def proxy_finding(line, column, **changes) -> Finding:
    values = dict(
        code="KVM001", name="irqchip-proxy", path="cpus.c", line=line, column=column,
        end_line=line, end_column=column + len("kvm_irqchip_in_kernel()"),
        message="kvm_irqchip_in_kernel() in common code asks a narrower question: use kvm_halt_in_kernel()",
        function="cpu_thread_is_idle", symbol="kvm_irqchip_in_kernel",
    )
    values.update(changes)
    return Finding(**values)


def safe_fix() -> Fix:
    return Fix("safe", "replace kvm_irqchip_in_kernel() with kvm_halt_in_kernel()")


def make_report(root: Path, findings, **extra) -> Report:
    return Report(findings=findings, root=root, display_base=root, working_directory=root, files=1, parsed=1, seconds=0.0, **extra)


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "cpus.c").write_text(CPUS_C, encoding="utf-8")
    return tmp_path


def test_sarif_is_valid_sarif_2_1_0_with_rules_fixes_and_suppressions(tree):
    with_replacement = proxy_finding(3, 51, replacement="kvm_halt_in_kernel()", fix=safe_fix(), evidence=("decides VCPU idleness",))
    without_replacement = proxy_finding(6, 31, fix=Fix("unsafe", "move the helper into the target"), confidence="low")
    suppressed = proxy_finding(6, 31, message="silenced", function=None)
    data = (tree / "cpus.c").read_bytes()
    start = data.index(b"kvm_irqchip_in_kernel()")
    edit = Edit("cpus.c", start, start + len("kvm_irqchip_in_kernel()"), b"kvm_halt_in_kernel()")
    planned = FindingFix("safe", safe_fix().description, (FileEdits("cpus.c", data, (edit,)),))
    report = make_report(tree, [with_replacement, without_replacement], suppressed=(suppressed,), show_suppressed=True,
                         fixes={with_replacement: planned})

    document = json.loads(render("sarif", report))

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(document)
    run = document["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kvmlint"
    kvm001 = next(rule for rule in driver["rules"] if rule["id"] == "KVM001")
    assert kvm001["name"] == "irqchip-proxy"
    assert kvm001["fullDescription"]["text"].startswith("Reports every call of `kvm_irqchip_in_kernel()`")
    assert "## Why is this bad?" in kvm001["help"]["markdown"]

    first, second, third = run["results"]
    assert first["ruleId"] == "KVM001" and driver["rules"][first["ruleIndex"]]["id"] == "KVM001"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "cpus.c", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == 3 and location["region"]["startColumn"] == 51
    replacement = first["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement["insertedContent"]["text"] == "kvm_halt_in_kernel()"
    assert replacement["deletedRegion"]["endColumn"] - replacement["deletedRegion"]["startColumn"] == len("kvm_irqchip_in_kernel()")
    assert first["fixes"][0]["properties"]["applicability"] == "safe"

    # No fix planned for it: none in SARIF, none described.
    assert "fixes" not in second and "fix" not in second["properties"]
    assert second["level"] == "note"
    # Two bytes of "é" are one code point each: columns count code points in SARIF.
    assert second["locations"][0]["physicalLocation"]["region"]["startColumn"] == 31 - 2
    assert third["suppressions"] == [{"kind": "inSource"}]


def test_sarif_without_findings_is_valid(tree):
    document = json.loads(render("sarif", make_report(tree, [])))
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(document)
    assert document["runs"][0]["results"] == []


def test_gitlab_code_quality_fields(tree):
    issues = json.loads(render("gitlab", make_report(tree, [proxy_finding(3, 51)])))
    assert issues == [
        {
            "description": issues[0]["description"],
            "check_name": "KVM001",
            "fingerprint": issues[0]["fingerprint"],
            "severity": "major",
            "location": {"path": "cpus.c", "lines": {"begin": 3, "end": 3}},
        }
    ]
    assert issues[0]["description"].startswith("KVM001 [irqchip-proxy] kvm_irqchip_in_kernel()")


def test_gitlab_fingerprints_survive_lines_shifting_and_tell_findings_apart(tree):
    before = json.loads(render("gitlab", make_report(tree, [proxy_finding(3, 51), proxy_finding(6, 31)])))
    (tree / "cpus.c").write_text("/* licence */\n\n" + CPUS_C.replace("    if (!env", "        if (!env"), encoding="utf-8")
    after = json.loads(render("gitlab", make_report(tree, [proxy_finding(5, 55), proxy_finding(8, 31)])))

    assert [issue["fingerprint"] for issue in after] == [issue["fingerprint"] for issue in before]
    assert [issue["location"]["lines"]["begin"] for issue in after] == [5, 8]
    assert len({issue["fingerprint"] for issue in after}) == 2


def test_gitlab_fingerprints_differ_for_identical_lines_in_one_function(tmp_path):
    (tmp_path / "cpus.c").write_text("void f(void)\n{\n    g(kvm_irqchip_in_kernel());\n    g(kvm_irqchip_in_kernel());\n}\n")
    findings = [proxy_finding(3, 7, function="f"), proxy_finding(4, 7, function="f")]
    issues = json.loads(render("gitlab", make_report(tmp_path, findings)))
    assert issues[0]["fingerprint"] != issues[1]["fingerprint"]


def test_github_annotation_line(tree):
    output = render("github", make_report(tree, [proxy_finding(3, 51)]))
    assert output == (
        "::warning file=cpus.c,line=3,col=51,endLine=3,endColumn=74,title=KVM001 irqchip-proxy::"
        "kvm_irqchip_in_kernel() in common code asks a narrower question: use kvm_halt_in_kernel()\n"
    )


def test_github_escaping():
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("dir,name:x%\n") == "dir%2Cname%3Ax%25%0A"
    finding = proxy_finding(1, 1, path="hw/a,b:c.c", message="50%\nmore")
    output = render("github", make_report(Path("/nonexistent"), [finding]))
    assert output.startswith("::warning file=hw/a%2Cb%3Ac.c,line=1,")
    assert output.endswith("::50%25%0Amore\n")
    assert output.count("\n") == 1


def test_statistics_count_per_rule_most_frequent_first_with_what_fix_can_do():
    findings = [proxy_finding(3, 51, fix=Fix("safe", "replace")), proxy_finding(6, 31, fix=Fix("unsafe", "replace")),
                proxy_finding(9, 5), Finding("KVM002", "arch-helper-in-common", "kvm-all.c", 1, 1, 1, 2, "m")]
    assert render_statistics(findings) == (
        "count  code    fixable  name\n"
        "    3  KVM001  1+1      irqchip-proxy\n"
        "    1  KVM002  0        arch-helper-in-common\n"
    )
    assert render_statistics([]) == ""


def test_text_ends_with_a_summary_and_says_why_a_fix_is_unsafe():
    findings = [
        proxy_finding(3, 51, fix=Fix("safe", "replace it")),
        proxy_finding(6, 31, fix=Fix("unsafe", "replace that", unsafe_reason="on arm it differs")),
        proxy_finding(9, 5),
    ]
    output = render("text", make_report(Path("/nonexistent"), findings))
    assert "    fix: replace it (safe: `kvmlint fix`)\n" in output
    assert "    fix: replace that (unsafe: on arm it differs; `kvmlint fix --unsafe-fixes`)\n" in output
    assert output.endswith(
        "Found 3 findings (1 fixable with `kvmlint fix`, 1 more with `kvmlint fix --unsafe-fixes`).\n")
    assert render("text", make_report(Path("/nonexistent"), [proxy_finding(9, 5)])).endswith(
        "Found 1 finding (none fixable automatically).\n")
    assert render("text", make_report(Path("/nonexistent"), [])) == ""


def test_text_lists_suppressed_findings_only_when_asked(tree):
    report = make_report(tree, [proxy_finding(3, 51)], suppressed=(proxy_finding(6, 31),))
    assert "(suppressed)" not in render("text", report)
    report.show_suppressed = True
    assert render("text", report).splitlines()[1].endswith("(suppressed)")


def test_write_atomically_replaces_the_file_with_normal_permissions(tmp_path):
    target = tmp_path / "report.sarif"
    target.write_text("old")
    write_atomically(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["report.sarif"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_a_finding_is_a_short_line_with_its_notes_under_it_in_every_format(tree):
    finding = proxy_finding(
        3, 51, replacement="kvm_halt_in_kernel()", fix=safe_fix(),
        evidence=("the function cpu_thread_is_idle() decides VCPU idleness",),
        details=("common code: built for every target",),
        verdicts=(("x86", "identical in all 2 configurations"), ("arm", "differs in 1 of 2: kernel_irqchip=off: false -> true")),
    )
    report = make_report(tree, [finding])
    text = render("text", report).splitlines()
    assert text[0] == f"cpus.c:3:51: KVM001 [irqchip-proxy] {finding.message}" and len(text[0]) < 160
    assert text[1:] == [
        "    evidence: the function cpu_thread_is_idle() decides VCPU idleness",
        "    common code: built for every target",
        "    fix: replace kvm_irqchip_in_kernel() with kvm_halt_in_kernel() (safe: `kvmlint fix`)",
        "    model: no change on x86",
        "    model on arm: differs in 1 of 2: kernel_irqchip=off: false -> true",
        "Found 1 finding (1 fixable with `kvmlint fix`).",
    ]
    assert render("concise", report) == text[0] + "\n"

    document = json.loads(render("json", report))["findings"][0]
    assert document["message"] == finding.message
    assert document["verdicts"] == {"x86": "identical in all 2 configurations", "arm": "differs in 1 of 2: kernel_irqchip=off: false -> true"}
    assert document["evidence"] == list(finding.evidence) and document["details"] == list(finding.details)

    sarif = json.loads(render("sarif", report))
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    result = sarif["runs"][0]["results"][0]
    assert result["message"]["text"] == finding.message
    assert "- model on arm: differs in 1 of 2" in result["message"]["markdown"]
    assert result["properties"]["verdicts"]["arm"].startswith("differs")

    annotation = render("github", report)
    assert annotation.count("\n") == 1  # one annotation, its notes escaped into it
    assert f"::{finding.message}%0Aevidence: the function" in annotation
    gitlab = json.loads(render("gitlab", report))[0]
    assert "- common code: built for every target\n" in gitlab["content"]["body"]
