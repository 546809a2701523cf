from __future__ import annotations

import pytest

from tests.infra.infra_harness import STACKS, StackRun, run_stack


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[str, StackRun]:
    return request.param, run_stack(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/infra" in str(item.fspath):
            item.add_marker(pytest.mark.infra)
