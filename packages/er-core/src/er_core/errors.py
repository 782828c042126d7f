"""One error type for every tool: what went wrong, where, and how to fix it."""

from __future__ import annotations


class ErError(Exception):
    """A failure the user can act on; the CLI runner prints it as two lines and exits 1.

    `at` names the place: a file and row (`train.csv:row 12`), or a JSON path (`$.fusion.kind`).
    """

    exit_code = 1

    def __init__(self, what: str, *, at: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.at = at
        self.hint = hint

    def lines(self) -> list[str]:
        head = f"error: {self.what}" + (f", at {self.at}" if self.at else "")
        return [head] + ([f"hint: {self.hint}"] if self.hint else [])

    def __str__(self) -> str:
        return "\n".join(self.lines())


class UsageError(ErError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2
