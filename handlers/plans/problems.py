"""Problems found in a plans directory, each naming its file, line and column."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    error = "error"
    warning = "warning"



@dataclass(frozen=True)
class PlanProblem:
    file: str
    line: int  # 1-based; 0 when the problem is not in a file's text (e.g. a missing directory)
    col: int  # 1-based
    message: str
    severity: Severity = Severity.error

    def __str__(self) -> str:
        where = self.file if self.line <= 0 else f"{self.file}:{self.line}:{self.col}"
        tag = "warning: " if self.severity is Severity.warning else ""
        return f"{where}: {tag}{self.message}"



class PlanLoadError(Exception):
    """Every problem found in a plans directory: all files are checked before raising, so one run
    shows the whole list instead of one fix-and-retry round per mistake."""

    def __init__(self, problems: list[PlanProblem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
