"""docs/rules.md is every rule's documentation under a stable anchor, generated from the rule modules;
`explain` names the anchor, and SARIF's rules link to it (`helpUri`) once the package says where the page
is published."""

from __future__ import annotations

import email.message
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from kvmlint.rules import docs as rule_docs
from kvmlint.reporters import Report, render

HERE = Path(__file__).resolve().parent.parent
RULES_PAGE = HERE / "docs" / "rules.md"
SARIF_SCHEMA = HERE / "tests" / "data" / "sarif" / "sarif-schema-2.1.0.json"
PUBLISHED = "https://kvmlint.example.org/docs/rules.md"


def kvmlint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, timeout=120)


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and GitLab) make of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_docs_rules_md_is_what_the_rule_modules_generate():
    generated = kvmlint("rules", "--markdown")
    assert generated.returncode == 0
    assert RULES_PAGE.read_text() == generated.stdout, "regenerate: kvmlint rules --markdown > docs/rules.md"


def test_each_rule_has_a_heading_whose_anchor_is_its_own():
    page = RULES_PAGE.read_text()
    outside_code = re.sub(r"^```.*?^```", "", page, flags=re.S | re.M)
    headings = [github_anchor(h) for h in re.findall(r"^## (.*)$", outside_code, re.M)]
    expected = [entry.anchor for entry in rule_docs.documented()]
    assert headings == expected
    assert expected[:5] == ["kvm001-irqchip-proxy", "kvm002-arch-helper-in-common",
                            "kvm003-irqchip-named-injection", "kvm004-int-predicate", "kvm006-kernel-irqchip-option"]
    assert "kvm000-unused-suppression" in expected
    for entry in rule_docs.documented():
        assert f"](#{entry.anchor})" in page  # the table at the top links each rule


def test_explain_names_the_anchor_of_the_rule():
    done = kvmlint("explain", "irq0-override")
    assert done.returncode == 0
    assert "Documentation: docs/rules.md#kvm002-arch-helper-in-common in kvmlint's repository" in done.stdout


def sarif_rules(findings=()) -> list[dict]:
    report = Report(findings=list(findings), root=HERE, display_base=HERE, working_directory=HERE, files=0, parsed=0,
                    seconds=0.0)
    document = json.loads(render("sarif", report))
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text()),
                               format_checker=jsonschema.FormatChecker()).validate(document)
    return document["runs"][0]["tool"]["driver"]["rules"]


def test_sarif_rules_link_to_their_anchor_on_the_published_page(monkeypatch):
    monkeypatch.setattr(rule_docs, "published_rules_page", lambda: PUBLISHED)
    descriptors = sarif_rules()
    assert [d["helpUri"] for d in descriptors] == [
        f"{PUBLISHED}#kvm001-irqchip-proxy", f"{PUBLISHED}#kvm002-arch-helper-in-common",
        f"{PUBLISHED}#kvm003-irqchip-named-injection", f"{PUBLISHED}#kvm004-int-predicate",
        f"{PUBLISHED}#kvm006-kernel-irqchip-option"]


def test_without_a_published_page_sarif_has_no_helpuri_rather_than_a_path(monkeypatch):
    monkeypatch.setattr(rule_docs, "published_rules_page", lambda: None)
    assert all("helpUri" not in d for d in sarif_rules())


@pytest.mark.parametrize("urls, page", [
    (["Rules, https://kvmlint.example.org/docs/rules.md"], "https://kvmlint.example.org/docs/rules.md"),
    (["Homepage, https://kvmlint.example.org/", "rules , https://x.example.org/rules.md#top"], "https://x.example.org/rules.md"),
    (["Homepage, https://kvmlint.example.org/"], None),
    (["Rules, docs/rules.md"], None),  # a path is no URL a SARIF viewer can open
])
def test_the_published_page_comes_from_the_packages_project_urls(monkeypatch, urls, page):
    import importlib.metadata

    metadata = email.message.Message()
    for url in urls:
        metadata["Project-URL"] = url
    monkeypatch.setattr(importlib.metadata, "metadata", lambda name: metadata)
    rule_docs.published_rules_page.cache_clear()
    try:
        assert rule_docs.published_rules_page() == page
    finally:
        rule_docs.published_rules_page.cache_clear()
