"""Every GitLab CI job of the README and docs/*.md is one GitLab takes, and works as written.

Each ```yaml block that holds a job with a Code Quality report is parsed as GitLab reads it; the job's
before_script and script lines then run with sh in a QEMU-like git repository whose merge request adds one
finding, with the CI variables GitLab sets for a merge request.  The image's package installs (`apk`, `pip`)
are left out: this suite's kvmlint is first on PATH instead.  The artifact must be valid Code Quality JSON
that holds exactly the merge request's finding.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent.parent
DOCUMENTS = [HERE / "README.md", *sorted((HERE / "docs").glob("*.md"))]
SAMPLE = HERE / "fixtures" / "qemu-snippets" / "qemu-2012"
INSTALLS = ("apk ", "pip ", "pip3 ", "python -m pip ", "python3 -m pip ")
SEVERITIES = {"info", "minor", "major", "critical", "blocker"}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Q. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Q. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}
# What the merge request adds: a proxy use in common code, the one finding its report must hold.
NEW_PROXY_USE = """
static bool qemu_cpu_is_idle(CPUArchState *env)
{
    return kvm_irqchip_in_kernel();
}
"""


def gitlab_jobs():
    for document in DOCUMENTS:
        text = document.read_text()
        for match in re.finditer(r"^```yaml\n(.*?)^```", text, re.S | re.M):
            parsed = yaml.safe_load(match.group(1))
            if not isinstance(parsed, dict):
                continue  # a GitHub Actions step list, or the pre-commit configuration
            line = text.count("\n", 0, match.start()) + 1
            for name, job in parsed.items():
                if isinstance(job, dict) and "script" in job:
                    yield pytest.param(name, job, id=f"{document.name}:{line}:{name}")


def lines(job: dict, key: str) -> list[str]:
    value = job.get(key, [])
    return [value] if isinstance(value, str) else value


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout.strip()


def merge_request(directory: Path) -> tuple[Path, str]:
    """A QEMU-like repository (the sample tree, with a baseline of its findings committed) and a branch
    adding one finding; returns it and the target branch's commit (the diff base)."""
    tree = directory / "qemu"
    shutil.copytree(SAMPLE, tree)
    git(tree, "init", "-q", "-b", "master")
    subprocess.run([sys.executable, "-m", "kvmlint", "check", "--no-cache", "--write-baseline", "kvmlint-baseline.json"],
                   cwd=tree, check=True, capture_output=True, timeout=300)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "QEMU as it is")
    base = git(tree, "rev-parse", "HEAD")
    git(tree, "checkout", "-q", "-b", "feature")
    with open(tree / "cpus.c", "a") as source:
        source.write(NEW_PROXY_USE)
    git(tree, "commit", "-q", "-am", "cpus: add qemu_cpu_is_idle")
    return tree, base


@pytest.mark.parametrize("name, job", list(gitlab_jobs()))
def test_a_gitlab_job_is_well_formed(name, job):
    script = lines(job, "script")
    assert script and all(isinstance(line, str) for line in script + lines(job, "before_script"))
    report = job["artifacts"]["reports"]["codequality"]
    assert job["artifacts"].get("when") == "always", "a failing job must still upload its report"
    outputs = [words[words.index("--output-file") + 1] for words in map(shlex.split, script) if "--output-file" in words]
    assert outputs == [report], "the job writes the file it names as its Code Quality report"
    for rule in job.get("rules", []):
        assert set(rule) <= {"if", "when", "changes", "exists", "allow_failure", "variables", "needs"}
    if "variables" in job:
        assert all(isinstance(value, (str, int)) for value in job["variables"].values())


@pytest.mark.parametrize("name, job", list(gitlab_jobs()))
def test_a_gitlab_job_runs_as_written_and_reports_the_new_finding(tmp_path, name, job):
    tree, base = merge_request(tmp_path)
    environment = {
        **os.environ, **GIT_ENV, **{key: str(value) for key, value in job.get("variables", {}).items()},
        "CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "master",
        "CI_PROJECT_DIR": str(tree), "KVMLINT_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    statuses = []
    for line in lines(job, "before_script") + lines(job, "script"):
        if line.startswith(INSTALLS):
            continue  # the image's installs: this suite's kvmlint is on PATH
        done = subprocess.run(["sh", "-c", line], cwd=tree, env=environment, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in done.stderr
        statuses.append(done.returncode)
    assert statuses[-1] == 1, "the job fails: the merge request adds a finding"
    assert all(status in (0, 1) for status in statuses)
    issues = json.loads((tree / job["artifacts"]["reports"]["codequality"]).read_text())
    assert isinstance(issues, list)
    for issue in issues:
        assert isinstance(issue["description"], str) and isinstance(issue["check_name"], str)
        assert re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"])
        assert issue["severity"] in SEVERITIES
        assert isinstance(issue["location"]["path"], str) and (tree / issue["location"]["path"]).is_file()
        assert isinstance(issue["location"]["lines"]["begin"], int)
    if "--diff-base" in " ".join(lines(job, "script")) or "--baseline" in " ".join(lines(job, "script")):
        added = len((tree / "cpus.c").read_text().splitlines()) - 1  # the new function's return line
        assert [(issue["check_name"], issue["location"]["path"], issue["location"]["lines"]["begin"])
                for issue in issues] == [("KVM001", "cpus.c", added)]
    else:  # a whole-tree job without a baseline reports the tree's findings too
        assert ("KVM001", "cpus.c") in {(issue["check_name"], issue["location"]["path"]) for issue in issues}


def test_docs_ci_has_a_merge_request_job_and_a_baseline_job():
    jobs = {param.id.split(":", 2)[2]: param.values[1] for param in gitlab_jobs() if param.id.startswith("ci.md")}
    assert "--diff-base \"$CI_MERGE_REQUEST_DIFF_BASE_SHA\"" in " ".join(lines(jobs["kvmlint"], "script"))
    assert jobs["kvmlint"]["variables"]["GIT_DEPTH"] == 1000
    assert "--baseline kvmlint-baseline.json" in " ".join(lines(jobs["kvmlint-tree"], "script"))
    assert all(job["image"] == "python:3.10-alpine" for job in jobs.values())
    assert all(any(line.startswith("pip install ") for line in lines(job, "before_script")) for job in jobs.values())
