"""The reusable workflows run exactly the tasks K2's own CI runs, so they cannot drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _runs(workflow: str) -> list[str]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return [
        step["run"].strip()
        for job in document["jobs"].values()
        for step in job["steps"]
        if "run" in step
    ]


def test_the_pull_request_workflow_runs_ci_run() -> None:
    assert _runs("ci.yml") == ["bash .ci/run"]
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert commands == ["./task test"]


def test_the_docker_workflow_runs_the_docker_half_of_task_test() -> None:
    assert _runs("docker.yml") == ["./task test:docker"]
    taskfile = yaml.safe_load((ROOT / "Taskfile.yml").read_text())
    assert {"task": "test:docker"} in taskfile["tasks"]["test"]["cmds"]


def test_task_lint_checks_the_workflows_with_actionlint() -> None:
    taskfile = yaml.safe_load((ROOT / "Taskfile.yml").read_text())
    assert any("actionlint" in str(cmd) for cmd in taskfile["tasks"]["lint"]["cmds"])
