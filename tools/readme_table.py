"""Write a table file into README.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.

Usage: python tools/readme_table.py NAME TABLE_FILE [README]   (the tools/*.sh scripts call it)
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(name: str, table: str, readme: str = "README.md") -> int:
    text = Path(readme).read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        print(f"{readme}: no {begin} ... {end} markers; table left in {table}", file=sys.stderr)
        return 0
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    body = Path(table).read_text().strip()
    Path(readme).write_text(f"{head}{begin}\n{body}\n{end}{tail}")
    print(f"table written into {readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
