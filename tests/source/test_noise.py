"""Warnings about files the parser cannot read: shown when something a rule reads may be lost
there, else only with --verbose (once per file)."""

import subprocess
import sys
from pathlib import Path

# A switch of case-label macros without semicolons (QEMU's vhost-user idiom): tree-sitter
# reads most of the function as syntax errors.
MACRO_SWITCH = """\
#include "kvm.h"
#define NAME_CASE(n) case n: return #n;
static const char *name(int req)
{{
    switch (req) {{
{cases}
{extra}
    }}
    return kvm_enabled() ? "on" : "off";
}}
"""


def tree(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "configure").write_text("")
    cases = "\n".join(f"    NAME_CASE(N{i})" for i in range(300))
    (tmp_path / "names.c").write_text(MACRO_SWITCH.format(cases=cases, extra=extra))
    return tmp_path


def check(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", "check", *args, str(root)], capture_output=True, text=True)


def test_macro_soup_that_hides_nothing_a_rule_reads_is_noted_only_with_verbose(tmp_path):
    root = tree(tmp_path, "")
    quiet = check(root)
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = check(root, "--verbose")
    assert verbose.stderr.count("names.c") == 1 and "names.c: mostly unparseable" in verbose.stderr


def test_macro_soup_that_may_hide_a_proxy_use_is_a_warning(tmp_path):
    result = check(tree(tmp_path, "    NAME_CASE(N) kvm_irqchip_in_kernel"))
    assert "warning: names.c: mostly unparseable" in result.stderr
