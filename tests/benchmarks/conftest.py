"""Each benchmark over its group's baseline, measured in the same run, under pytest-benchmark's table.

A group's baseline is its benchmark named ``test_plain_*`` (the plain Decimal computation of the
pricing core's lines). With ``--benchmark-enable`` the summary ends with one line per other
benchmark of the group, for example::

    pricing core: Email → Omnichannel quote: test_pricing_core_omnichannel_upgrade / plain = 2.6x mean, 2.5x median

Nothing is asserted: the ratio is for people and for the issue's target (3x or less), not a
test that fails on a busy machine.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

import pytest

BASELINE_PREFIX = "test_plain_"
_RATIOS = pytest.StashKey[list[str]]()

Group = tuple[str | None, list[Mapping[str, Any]]]


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_group_stats(
    config: pytest.Config, benchmarks: object, group_by: str
) -> Generator[None, list[Group], list[Group]]:
    """Read the groups as pytest-benchmark makes them at the end of the session (its public hook)."""
    groups = yield
    config.stash[_RATIOS] = list(ratio_lines(groups))
    return groups


def ratio_lines(groups: Iterable[Group]) -> Iterator[str]:
    for group, benchmarks in groups:
        baseline = next((b for b in benchmarks if b["name"].startswith(BASELINE_PREFIX)), None)
        if baseline is None:
            continue
        for bench in benchmarks:
            if bench is not baseline:
                yield (
                    f"{group}: {bench['name']} / plain = {bench['mean'] / baseline['mean']:.1f}x mean, "
                    f"{bench['median'] / baseline['median']:.1f}x median"
                )


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's table
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(_RATIOS, [])
    if lines:
        terminalreporter.section("ratios to the plain baseline, same run")
        for line in lines:
            terminalreporter.write_line(line)
