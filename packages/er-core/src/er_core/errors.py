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
        """`error: <what>, at <where>` and `hint: <fix>`, each one line whatever the text holds."""
        head = f"error: {one_line(self.what)}" + (f", at {one_line(self.at)}" if self.at else "")
        return [head] + ([f"hint: {one_line(self.hint)}"] if self.hint else [])

    def __str__(self) -> str:
        return "\n".join(self.lines())


class UsageError(ErError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


def one_line(text: str) -> str:
    """`text` with its line breaks folded into spaces (the protocol's messages are one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())
