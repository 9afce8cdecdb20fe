"""docs/xantragsstatus.md is exactly what scripts/handbook.py makes of the XSD, the code lists and the rules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def handbook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("handbook", ROOT / "scripts" / "handbook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("handbook", module)
    spec.loader.exec_module(module)
    return module


def test_the_committed_handbook_is_generated_from_the_schema_and_the_code_lists() -> None:
    generated = handbook().render()
    committed = (ROOT / "docs" / "xantragsstatus.md").read_text(encoding="utf-8")
    assert committed == generated, "docs/xantragsstatus.md is stale: run `.venv/bin/python scripts/handbook.py`"


def test_the_handbook_names_every_element_code_and_status_of_the_sources() -> None:
    from rueckkanal.codelists import codelists

    text = handbook().render()
    assert text == handbook().render()  # deterministic
    for element in ("antragsstatus.statusberichtigung.0102", "bezug/nachrichtenUUID", "statusereignis/frist"):
        assert element in text
    for codelist in codelists().all:
        assert f"`{codelist.uri}`" in text
        assert all(f"| {code} |" in text for code in codelist.rows)
    assert "```mermaid\nstateDiagram-v2" in text and "    s410 --> s420" in text


def test_the_check_mode_fails_when_the_file_differs_and_passes_once_written(tmp_path: Path) -> None:
    module = handbook()
    module.OUTPUT = tmp_path / "xantragsstatus.md"
    module.ROOT = tmp_path
    module.OUTPUT.write_text("veraltet\n", encoding="utf-8")
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0 and module.main(["--check"]) == 0
