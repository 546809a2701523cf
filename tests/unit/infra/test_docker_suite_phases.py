"""`task test:docker` runs its tests in two phases: the Docker stack's own faults alone."""

from __future__ import annotations

import itertools

from _pytest.mark.expression import Expression

from k2stack.docker.suite import PHASES

MARKERS = ("integration", "reliability", "docker", "docker_stack", "local_stack", "heavy")


def _phases_of(marks: set[str]) -> list[int]:
    return [
        i
        for i, expression in enumerate(PHASES)
        if Expression.compile(expression).evaluate(lambda name, **_: name in marks)
    ]


def test_every_test_runs_in_at_most_one_phase_and_the_stack_faults_alone() -> None:
    for bits in itertools.product((False, True), repeat=len(MARKERS)):
        marks = {name for name, on in zip(MARKERS, bits, strict=True) if on}
        phases = _phases_of(marks)
        assert len(phases) <= 1, (marks, phases)
        if "docker_stack" in marks and not marks & {"local_stack", "heavy"}:
            assert phases == [1], marks  # the phase that runs with one worker, after the rest
    assert _phases_of({"integration"}) == [0]
    assert _phases_of({"docker"}) == [0]
    assert _phases_of({"reliability", "heavy"}) == []
    assert _phases_of({"integration", "local_stack"}) == []
