"""Input problems found while validating a request, each naming its field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str  # the API (camelCase) name
    message: str


class InvalidInput(ValueError):
    """One or more fields are invalid; nothing was written."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems
