"""Every notebook in examples/ runs top to bottom and prints what its text says it does.

Needs nbclient (with nbformat) and a "python3" Jupyter kernel (ipykernel); skipped
without nbclient.
"""
import json
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))

EXPECTED = {  # outputs a notebook must show, compared with whitespace removed
    "seed_notebook.ipynb": [
        "array([0.5, 0.5, 0.5])",
        "array([0.9999546, 0.5, 0.9999546])",
        "array([0.9999546, 0.5, 0.5])",
    ],
}


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _outputs(nb) -> list:
    """The text of every output: streams, and the text/plain of results and displays."""
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                texts.append(output.data.get("text/plain", ""))
    return texts


def test_the_seed_notebook_is_there():
    assert EXAMPLES / "seed_notebook.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_saved_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]


# Some jupyter_core versions warn, on some platforms, that Jupyter's paths are moving to
# platformdirs: not this project's warning (the notebook's own code runs in the kernel).
@pytest.mark.filterwarnings("ignore:Jupyter is migrating its paths:DeprecationWarning")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    import nbformat
    from jupyter_client.kernelspec import NoSuchKernel

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()  # raises CellExecutionError, naming the cell, if one fails
    except NoSuchKernel:
        pytest.fail("no 'python3' Jupyter kernel: pip install ipykernel")
    shown = _squeeze("\n".join(_outputs(nb)))
    for expected in EXPECTED.get(path.name, []):
        assert _squeeze(expected) in shown, f"{expected} not in the outputs of {path.name}"
    if path.name == "seed_notebook.ipynb":  # each experiment's trace shown as lstmtrace's HTML
        html = [o.data.get("text/html", "") for cell in nb.cells for o in cell.get("outputs", [])
                if o.output_type == "execute_result"]
        assert sum('<table class="lstmtrace">' in h for h in html) == 3
