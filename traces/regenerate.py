"""Regenerate the committed golden traces from the lstmtrace command itself.

    python traces/regenerate.py        (or: make traces)

Each trace is written twice, as CSV (every digit) and as the annotated text; the
diffs, of the committed traces themselves, the same way; the pictures as SVG and
PNG (needs matplotlib); the live workbooks as xlsx (needs XlsxWriter), dated by
SOURCE_DATE_EPOCH so that an unchanged workbook is the same bytes.
tests/test_traces.py runs the same commands and fails when a file here is stale.
"""
import pathlib
import sys

import numpy as np

from click.testing import CliRunner

from lstmtrace.formats import FORMATS as FORMAT_TABLE

HERE = pathlib.Path(__file__).parent

NOTEBOOK = ["--x", "10,0,0", "--h", "0,0,10", "--c", "1,1,1", "--weights", "zeros"]

TRACES = {
    # The learner's question: identity weights, zero biases; why is f 0.475 and not 0 or 1?
    "seed_question": ["step"],
    # ... and its backward pass: dL/d every quantity for L = Σ h.
    "seed_question_backward": ["step", "--backward"],
    # The teacher's notebook: all weights zero, so every gate is σ(0) = 0.5 ...
    "notebook_1_zeros": ["step", *NOTEBOOK],
    # ... then the forget gate's W and U are identity matrices ...
    "notebook_2_identity": ["step", *NOTEBOOK, "--set", "forget.W=identity", "--set", "forget.U=identity"],
    # ... then W stays identity and U is zeroed: h_prev no longer reaches the forget gate.
    "notebook_3_u_zeros": ["step", *NOTEBOOK, "--set", "forget.W=identity", "--set", "forget.U=zeros"],
    # A sequence: one unit, x = 1 five times; the forget gate keeps most of c, so c keeps growing.
    "sequence_one_unit": ["run", "--xs", "1;1;1;1;1"],
    # The notebook's comparisons, as diffs of the traces above: what identity weights change ...
    "diff_zeros_vs_identity": ["diff", str(HERE / "notebook_1_zeros.csv"), str(HERE / "notebook_2_identity.csv")],
    # ... and what zeroing U changes: h_prev stops reaching the forget gate.
    "diff_identity_vs_u_zeros": ["diff", str(HERE / "notebook_2_identity.csv"),
                                 str(HERE / "notebook_3_u_zeros.csv")],
    # ... and the three experiments side by side, one column each, as a teacher lines them up.
    "diff_notebook_side_by_side": ["diff", *(str(HERE / f"notebook_{name}.csv")
                                             for name in ("1_zeros", "2_identity", "3_u_zeros"))],
}
# The seed question's step under each of Greff et al.'s variants (np, the default, is seed_question) ...
VARIANTS = ("v", "nig", "nfg", "nog", "niaf", "noaf", "cifg")
TRACES.update({f"variant_{name}": ["step", "--variant", name] for name in VARIANTS})
# ... and what coupling the gates, or adding peepholes, changes in it.
TRACES.update({f"diff_np_vs_{name}": ["diff", str(HERE / "seed_question.csv"), str(HERE / f"variant_{name}.csv")]
               for name in ("cifg", "v")})
# The same sequence run in reverse, as the second half of a bidirectional layer: x_5 first, steps in time order.
TRACES["sequence_one_unit_reverse"] = ["run", "--xs", "1;1;1;1;1", "--direction", "reverse"]
# A practitioner's model: a 2-layer bidirectional nn.LSTM (tests/fixtures/make_model_fixtures.py), every
# layer from token ids through its embedding; the text explains step 1 of each of its four cells.
TRACES["stack_bidirectional"] = ["run", "--weights", str(HERE.parent / "tests" / "fixtures" / "torch_model_bilstm_state.npz"),
                                 "--layer", "all", "--tokens", "3,1,4", "--embedding", "embedding.weight",
                                 "--steps", "1"]
# Each trace in two of lstmtrace's formats, under the suffixes its format table gives them.
FORMATS = {FORMAT_TABLE[name].suffix.lstrip("."): name for name in ("csv", "text")}  # {"csv": "csv", "txt": "text"}

# A two-input sequence for the heatmaps: a sine and a cosine over 24 steps, to 2 decimals.
WAVE = ";".join(f"{np.sin(t / 3):.2f},{np.cos(t / 3):.2f}" for t in range(24))
PICTURES = {
    # The worked example's cell, every wire labelled with its values.
    "seed_question_cell": ["draw"],
    # The worked example's cell with peepholes (Greff's vanilla): the P⊙c wires, o after c.
    "variant_v_cell": ["draw", "--variant", "v"],
    # Gate heatmaps of a 6-unit layer (random weights, seed 3) over the wave.
    "sequence_heatmaps": ["plot", "--xs", WAVE, "--weights", "random:3", "--hidden-size", "6"],
}
PICTURE_FORMATS = ("svg", "png")

WORKBOOKS = {
    # The learner's step as a live spreadsheet: change a weight or an input and every formula recomputes.
    "seed_question": ["step"],
}
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01: the workbooks' creation date, fixed


def render(name: str, suffix: str) -> str:
    """What ``lstmtrace`` prints for trace ``name`` in the format of ``suffix``."""
    from lstmtrace.cli import cli

    result = CliRunner().invoke(cli, [*TRACES[name], "--format", FORMATS[suffix]], catch_exceptions=False)
    if result.exit_code != 0 and not (TRACES[name][0] == "diff" and result.exit_code == 1):
        raise RuntimeError(f"lstmtrace {' '.join(TRACES[name])} failed: {result.stderr}")
    return result.stdout


def picture(name: str, path: pathlib.Path) -> None:
    """Draw picture ``name`` into ``path`` (its suffix says SVG or PNG) with the lstmtrace command."""
    from lstmtrace.cli import cli

    result = CliRunner().invoke(cli, [*PICTURES[name], "-o", str(path)], catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"lstmtrace {PICTURES[name][0]} failed: {result.stderr}")


def workbook(name: str, path: pathlib.Path) -> None:
    """Write workbook ``name`` into ``path`` with the lstmtrace command."""
    from lstmtrace.cli import cli

    result = CliRunner().invoke(cli, [*WORKBOOKS[name], "-o", str(path)], env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
                                catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"lstmtrace {WORKBOOKS[name][0]} -o {path.name} failed: {result.stderr}")


def main() -> None:
    for name in TRACES:
        for suffix in FORMATS:
            path = HERE / f"{name}.{suffix}"
            path.write_text(render(name, suffix), encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}", file=sys.stderr)
    for name in PICTURES:
        for suffix in PICTURE_FORMATS:
            path = HERE / f"{name}.{suffix}"
            picture(name, path)
            print(f"wrote {path.relative_to(HERE.parent)}", file=sys.stderr)
    for name in WORKBOOKS:
        path = HERE / f"{name}.xlsx"
        workbook(name, path)
        print(f"wrote {path.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
