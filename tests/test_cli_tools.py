"""`moa ask --json-schema FILE`: the answer is JSON valid against the file's schema."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moa.cli import app

runner = CliRunner()


def test_ask_json_schema_prints_json_valid_against_it(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
        "required": ["city", "celsius"],
    }
    path = tmp_path / "weather.json"
    path.write_text(json.dumps(schema))
    result = runner.invoke(app, ["ask", "-r", "fake", "--json-schema", str(path), "Weather?"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"city": "", "celsius": 0}
    path.write_text('{"type": "strnig"}')
    bad = runner.invoke(app, ["ask", "-r", "fake", "--json-schema", str(path), "Weather?"])
    assert bad.exit_code == 2
    assert "response_format.json_schema.schema.type: unknown type 'strnig'" in bad.output
