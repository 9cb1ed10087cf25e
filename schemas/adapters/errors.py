"""The one error every intake adapter raises for input it rejects."""

from dataclasses import dataclass


@dataclass
class IntakeError(Exception):
    """Bad input, said so that the sender can fix it: which field, and where in the document."""

    message: str
    field: str | None = None
    line: int | None = None
    col: int | None = None
    source: str | None = None  # file name or "body"

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.source or "body", self.line, self.col) if p is not None)
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"error": str(self), "field": self.field, "line": self.line, "col": self.col, "message": self.message}
