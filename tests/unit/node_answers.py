"""Expressions run both here and in Node (``tests/data/cases.json``), and Node's answers.

``tests/data/make_node_answers.js`` records Node's answers in ``tests/data/node_answers.json``
once (no Node needed to run the tests); :func:`eval_cases` is the sandbox side of the same
normalization (a ``Uint8Array`` where Node has a ``Buffer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data"
CASES: dict[str, Any] = json.loads((DATA / "cases.json").read_text("utf-8"))
NODE: dict[str, Any] = json.loads((DATA / "node_answers.json").read_text("utf-8"))

_EVAL = """
const normalize = (v) => {
  if (v instanceof Uint8Array) {
    return { bytes: Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('') };
  }
  if (v instanceof Error || v instanceof DOMException) {
    return { error: v.name, code: v.code === undefined ? null : v.code };
  }
  if (v === undefined) return { undefined: true };
  return JSON.parse(JSON.stringify(v));
};
const out = {};
for (const expr of context.cases) {
  try { out[expr] = normalize(eval(expr)); } catch (e) { out[expr] = normalize(e); }
}
return out;
"""


def eval_cases(prelude: str = "") -> str:
    """Code answering ``{expr: normalized value}`` for each of ``context.cases``, evaluated
    after ``prelude`` (e.g. the ``require`` calls the expressions use)."""
    return prelude + _EVAL
