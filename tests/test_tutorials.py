"""The tutorials run top to bottom (1 epoch each): a notebook that errors is a broken lesson."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.ipynb"))
# What each notebook must print: the score its lesson ends on.
PRINTS = {"translation": "BLEU", "classification": "accuracy", "generation": "perplexity", "word_vectors": "Spearman"}


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_EPOCHS", "1")
    assert path.stem in PRINTS, f"say in PRINTS what {path.name} must print"
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [cell for cell in code_cells if cell.outputs or cell.execution_count], "commit the notebook cleared"
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in code_cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    word = PRINTS[path.stem]
    assert any(word in o.get("text", "") for o in outputs), f"the notebook must print its {word}"
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook must draw its plots"
