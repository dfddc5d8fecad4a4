"""Print the README's settings table from ``api.settings.ApiSettings`` (the domain's settings and the API's):
each field, its default, and the
comment above it (or its description), so the documentation is made from the code it documents."""

from __future__ import annotations

import ast
import inspect

from pydantic import SecretStr

from api.settings import ApiSettings
from graph.settings import Settings


def _comments() -> dict[str, str]:
    out: dict[str, str] = {}
    for cls in (Settings, ApiSettings):
        out |= _class_comments(cls)
    return out


def _class_comments(cls) -> dict[str, str]:
    source = inspect.getsource(cls)
    lines = source.splitlines()
    out: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        text, i = [], node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#") and not lines[i].strip().startswith("# --"):
            text.insert(0, lines[i].strip().lstrip("# "))
            i -= 1
        trailing = lines[node.lineno - 1].partition("  # ")[2]
        out[node.target.id] = " ".join(text + ([trailing] if trailing else []))
    return out


def table() -> str:
    comments = _comments()
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in ApiSettings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = "(secret)" if default.get_secret_value() else ""
        shown = "unset" if default is None else f"`{default}`"
        meaning = comments.get(name) or field.description or ""
        rows.append(f"| `RINGWATCH_{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
