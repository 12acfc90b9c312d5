"""A scripted "model" for the comparison-table prompt: answers from what the prompt shows.

It fills the table from the quotes it is shown: per paper, the first quote's opening words as
the "Approach" cell and the words after them as the "Finding" cell, so every honest cell is
verbatim evidence. It also misbehaves on purpose, in ways verification must absorb:

* the first row's "Finding" is a claim no paper makes (``UNSUPPORTED_CELL``): it must be
  blanked, while the row survives on its other cell;
* one extra row belongs to a key it was not offered (``FOREIGN_KEY``): it must be dropped.

When fewer than three papers come with quotes there is nothing to compare from, and it declines.
``answer(body)`` returns None for a prompt that is not the table prompt.
"""

from __future__ import annotations

import json
import re

TABLE_TASK = (
    "Task: decide whether the papers below can be compared in one table, and if so fill it "
    "from their evidence."
)
UNSUPPORTED_CELL = "cold fusion reactors inside every laptop"
FOREIGN_KEY = "invented2099table"
COLUMNS = ["Approach", "Finding"]
MIN_QUOTED = 3
# Words per cell: each half of a quote of up to 16 words.
HALF = 8


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def papers(text: str) -> list[tuple[str, list[str]]]:
    """(key, quotes) of every paper block in the prompt, in order."""
    found = []
    for key, block in re.findall(r"^<<<paper (\S+)\n(.*?)\n>>>$", text, flags=re.M | re.S):
        found.append((key, re.findall(r'^- "(.*)"$', block, flags=re.M)))
    return found


def _halves(quote: str) -> tuple[str, str]:
    words = quote.split()[: 2 * HALF]
    middle = (len(words) + 1) // 2
    return " ".join(words[:middle]), " ".join(words[middle:])


def table_answer(body: dict) -> str:
    text = _text(body)
    section = re.search(r"^<<<section\n.*?^Section: ([^\n]*)$", text, flags=re.M | re.S)
    title = section.group(1).strip() if section else "this section"
    quoted = [(key, quotes) for key, quotes in papers(text) if quotes]
    if len(quoted) < MIN_QUOTED:
        return json.dumps(
            {
                "rationale": f"Only {len(quoted)} of the papers come with quotes to compare.",
                "useful": False,
                "caption": "",
                "columns": [],
                "rows": [],
            }
        )
    rows = []
    for index, (key, quotes) in enumerate(quoted):
        approach, finding = _halves(quotes[0])
        rows.append({"key": key, "cells": [approach, UNSUPPORTED_CELL if index == 0 else finding]})
    rows.append({"key": FOREIGN_KEY, "cells": rows[0]["cells"]})
    return json.dumps(
        {
            "rationale": f"All {len(quoted)} papers state an approach and a finding.",
            "useful": True,
            "caption": f"How the papers on {title.lower()} compare.",
            "columns": COLUMNS,
            "rows": rows,
        }
    )


def answer(body: dict) -> str | None:
    return table_answer(body) if TABLE_TASK in _text(body) else None
