"""JSON Schema export of the contract, for teams that do not use Python.

    python -m im_contracts.schema OUT_DIR          # (re)write OUT_DIR/<TypeName>.json and topics.json
    python -m im_contracts.schema --check OUT_DIR  # exit 1 if OUT_DIR differs from the code

Schemas describe what consumers accept (validation mode): amounts may be numbers or
strings on input, and are always written as strings.
"""

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from .keys import key_scope
from .unions import TOPIC_MODELS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TOPICS_FILE = "topics.json"
_DIFF_LINES_PER_FILE = 20


def _to_text(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name → file text for every type, plus the topic index."""
    files = {}
    for topic, models in TOPIC_MODELS.items():
        for model in models:
            type_name = model.model_fields["type"].default
            schema = {
                "$schema": JSON_SCHEMA_DIALECT,
                **model.model_json_schema(mode="validation"),
                "x-kafka-topic": topic,
                "x-kafka-key": key_scope(model).value,
            }
            files[f"{type_name}.json"] = _to_text(schema)
    topic_index = {topic: [model.model_fields["type"].default for model in models] for topic, models in TOPIC_MODELS.items()}
    files[TOPICS_FILE] = _to_text(topic_index)
    return files


def write_schemas(out_dir: Path) -> list[str]:
    """Makes `out_dir` match the code; returns what changed. Removes stale schema files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = render_schemas()
    changes = []
    for name, text in expected.items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            changes.append(f"wrote {name}")
            path.write_text(text, encoding="utf-8")
    for path in sorted(out_dir.glob("*.json")):
        if path.name not in expected:
            changes.append(f"removed {path.name}")
            path.unlink()
    return changes


def check_schemas(out_dir: Path) -> list[str]:
    """Every difference between `out_dir` and the code, as readable lines; empty when equal."""
    expected = render_schemas()
    problems = []
    for name, text in expected.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"missing: {name}")
            continue
        committed = path.read_text(encoding="utf-8")
        if committed != text:
            diff = list(
                difflib.unified_diff(
                    committed.splitlines(), text.splitlines(), f"committed/{name}", f"code/{name}", lineterm=""
                )
            )
            shown = diff[:_DIFF_LINES_PER_FILE]
            if len(diff) > len(shown):
                shown.append(f"... {len(diff) - len(shown)} more diff lines")
            problems.append(f"changed: {name}\n" + "\n".join(f"    {line}" for line in shown))
    problems.extend(
        f"stale: {path.name} (no such type)" for path in sorted(out_dir.glob("*.json")) if path.name not in expected
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m im_contracts.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on any difference")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)

    if args.check:
        problems = check_schemas(args.out_dir)
        if problems:
            print(f"{len(problems)} schema file(s) differ from the code in {args.out_dir}:", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            print(f"Regenerate with: python -m im_contracts.schema {args.out_dir}", file=sys.stderr)
            return 1
        print(f"schemas in {args.out_dir} match the code")
        return 0

    changes = write_schemas(args.out_dir)
    print("\n".join(changes) if changes else f"schemas in {args.out_dir} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
