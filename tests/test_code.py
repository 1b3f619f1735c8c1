"""The step as code (``--format python``): a standalone numpy script that reproduces the trace, bit for bit.

The contract: run on its own, the script prints every traced value (every one but the biases,
which it sets out as b_f, …), and each printed number is the traced float to the last bit; it
imports numpy and nothing else; what it cannot write is refused in one line naming the option.
The names the script prints are spelled out here by hand (``NAME``), not taken from lstmtrace.
"""
import ast
import contextlib
import io
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmtrace
from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, Variant
from lstmtrace.code import to_python
from lstmtrace.errors import OptionError
from lstmtrace.examples import SEED_QUESTION

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
LETTER = {"forget": "f", "input": "i", "candidate": "g", "output": "o"}
CELL = {"forget*c_prev": "f_c_prev", "input*candidate": "i_g", "c": "c", "h": "h"}


def NAME(gate, quantity):
    """The script's variable for a traced quantity, as the README promises: Wx_f, preact_f, f, c, tanh_c, h."""
    if gate == "given":
        return quantity
    if gate in LETTER:
        return LETTER[gate] if quantity == "act" else f"{'b' if quantity == 'bias' else quantity}_{LETTER[gate]}"
    if quantity in CELL:
        return CELL[quantity]
    return quantity.replace("output*", "o_").replace("(c)", "_c")  # tanh(c) → tanh_c, output*relu(c) → o_relu_c


def parse(stdout):
    """{step: {name: list of floats}} from the script's output (a single step is step 1)."""
    steps = {}
    current = single = {}
    for line in stdout.splitlines():
        if line.startswith("step "):
            current = steps.setdefault(int(line.split()[1]), {})
            continue
        name, _, value = line.partition(" = ")
        assert name not in current, f"{name} printed twice"
        current[name] = ast.literal_eval(value)
    return steps or {1: single}


def bits(values):
    return np.asarray(values, dtype=np.float64).view(np.uint64)


def assert_reproduces(trace, printed, namespace=None):
    """Every value of every step of ``trace`` is the printed one, bit for bit (biases: in the namespace)."""
    assert sorted(printed) == list(range(1, trace.steps + 1))
    for step in range(1, trace.steps + 1):
        expected = set()
        for gate, quantities in trace.cell.pipeline:
            for quantity in quantities:
                traced = trace.value(gate, quantity, step=step)
                name = NAME(gate, quantity)
                if quantity == "bias":
                    if namespace is not None:
                        assert np.array_equal(bits(namespace[name]), bits(traced)), name
                    continue
                expected.add(name)
                got = printed[step].get(name)
                assert got is not None, f"step {step}: {name} ({gate}.{quantity}) is not printed"
                assert np.array_equal(bits(got), bits(traced)), (
                    f"step {step} {name}: {got} != {traced.tolist()}")
        assert set(printed[step]) == expected


def run_script(script, tmp_path):
    """Run the script as its reader would: a file, a fresh Python."""
    path = tmp_path / "step.py"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return parse(result.stdout)


def exec_script(script):
    """Run the script in this process (fast, for many cases): what it prints, and its variables."""
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(script, "step.py", "exec"), namespace)
    return parse(out.getvalue()), namespace


def random_params(E, H, variant=None, seed=0):
    """Weights with every number non-trivial: random W, U, P, W_hr and non-zero biases."""
    p = Parameters.random(E, H, seed=seed, variant=variant)
    rng = np.random.default_rng(seed + 1)
    for gate in p.gates:
        p.set(gate, "b", rng.uniform(-0.7, 0.7, H))
    return p


XS = np.array([[0.5, -1.0, 0.25], [1.5, 0.3, -0.7], [-0.2, 0.9, 2.0], [0.1, -0.4, 0.6]])


# -- the seed question, through the command line ----------------------------------------------------

def test_the_seed_questions_step_as_a_script_prints_the_traced_values(tmp_path):
    script = assert_ok(invoke("step", "--format", "python")).stdout
    printed = run_script(script, tmp_path)
    trace = lstmtrace.step(Parameters.identity(5, 5), SEED_QUESTION["x"], SEED_QUESTION["h_prev"],
                           SEED_QUESTION["c_prev"])
    assert_reproduces(trace, printed)
    # the learner's own ft = 1 / (1 + np.exp(-(htminus1 + xt))), to the digits of their question
    assert np.round(printed[1]["f"], 8).tolist() == [0.47502081, 0.68997448, 0.549834, 0.4875026, 0.66818777]


def test_the_seed_script_reads_like_the_equations():
    script = assert_ok(invoke("step", "--format", "python")).stdout
    lines = script.splitlines()
    for line in ("preact_f = Wx_f + Uh_f + b_f", "f = sigmoid(preact_f)", "g = np.tanh(preact_g)",
                 "f_c_prev = f * c_prev", "i_g = i * g", "c = f_c_prev + i_g", "tanh_c = np.tanh(c)", "h = o * tanh_c",
                 "x = np.array([-0.1, 0.3, 0.1, -0.25, 0.1])  # x_t"):
        assert any(written.split("  # ")[0] == line.split("  # ")[0] for written in lines), line
    assert "Wx_f, Wx_i, Wx_g, Wx_o = np.split(W @ x, 4)" in script  # the stacked product, and why
    assert "the last bit differs" in script.replace("\n# ", " ")
    assert "W_C" in script and "C~_t" in script and "W_f @ x + U_f @ h_prev" in script  # colah's names
    assert "The worked example" in script  # the command's title
    assert "−" not in script  # ASCII minus only: numbers paste into Python


def test_o_step_py_writes_the_same_script(tmp_path):
    stdout = assert_ok(invoke("step", "--format", "python")).stdout
    result = assert_ok(invoke("step", "-o", tmp_path / "step.py"))
    assert result.stdout == "" and (tmp_path / "step.py").read_text(encoding="utf-8") == stdout


def test_the_script_imports_numpy_and_nothing_else():
    script = assert_ok(invoke("run", "--xs", "1,0;0,1;1,1", "--hidden-size", "2", "--format", "python")).stdout
    imports = [node for node in ast.walk(ast.parse(script)) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(node) for node in imports] == ["import numpy as np"]


# -- sequences ------------------------------------------------------------------------------------

def test_a_sequence_is_a_loop_that_carries_h_and_c(tmp_path):
    script = assert_ok(invoke("run", "--xs", "1,0,2;0,1,-1;1,1,0.5", "--weights", "random:3", "--h", "0.1,-0.2",
                              "--c", "0.3,0.4", "--format", "python")).stdout
    assert "for t in range(1, 4):" in script and "h_prev, c_prev = h, c" in script
    trace = lstmtrace.run(Parameters.random(3, 2, seed=3), [[1, 0, 2], [0, 1, -1], [1, 1, 0.5]], [0.1, -0.2],
                          [0.3, 0.4])
    assert_reproduces(trace, run_script(script, tmp_path))


def test_a_reverse_cell_loops_from_the_last_x_and_numbers_steps_in_time_order(tmp_path):
    trace = lstmtrace.run(random_params(3, 4, seed=5), XS, direction="reverse")
    script = trace.to_python()
    assert "for t in range(4, 0, -1):" in script
    printed = run_script(script, tmp_path)
    assert_reproduces(trace, printed)


def test_one_direction_of_a_bidirectional_model_from_the_command_line(tmp_path):
    path = FIXTURES / "torch_model_bilstm_state.npz"
    args = ["run", "--weights", path, "--direction", "reverse", "--tokens", "3,1,4", "--embedding", "embedding.weight"]
    script = assert_ok(invoke(*args, "--format", "python")).stdout
    trace = lstmtrace.read_trace(io.StringIO(assert_ok(invoke(*args, "--format", "csv")).stdout))
    assert trace.direction == "reverse"
    assert_reproduces(trace, run_script(script, tmp_path))


# -- every cell: the presets, the activations, clip and projection --------------------------------------

@pytest.mark.parametrize("preset", ["np", "v", "nig", "nfg", "nog", "niaf", "noaf", "cifg"])
def test_every_preset_reproduces_bit_for_bit(preset):
    variant = Variant.preset(preset)
    params = random_params(3, 4, variant, seed=11)
    one = lstmtrace.step(params, XS[0], [0.2, -0.5, 0.9, 0.1], [1.5, -0.3, 0.2, -2.0])
    assert_reproduces(one, *exec_script(one.to_python()))
    sequence = lstmtrace.run(params, XS, [0.2, -0.5, 0.9, 0.1], [1.5, -0.3, 0.2, -2.0])
    assert_reproduces(sequence, *exec_script(sequence.to_python()))


def test_a_preset_from_the_command_line_runs_as_a_file(tmp_path):
    script = assert_ok(invoke("step", "--variant", "cifg", "--x", "1,-2", "--h", "0.5,0.25", "--c", "1,-1",
                              "--weights", "random:4", "--format", "python")).stdout
    assert "f = 1.0 - i  # coupled gates" in script and "Pc_o = P_o * c" in script
    trace = lstmtrace.step(Parameters.random(2, 2, seed=4, variant=Variant.preset("cifg")), [1, -2], [0.5, 0.25],
                           [1, -1])
    assert_reproduces(trace, run_script(script, tmp_path))


VARIANTS = [
    Variant(gate_activation="hard_sigmoid"),
    Variant(gate_activation="hard_sigmoid:0.2,0.5"),
    Variant(gate_activation="hard_sigmoid:0.2,0.5", candidate_activation="hard_sigmoid:0.3,-0.1",
            cell_activation="hard_sigmoid"),  # three hard sigmoids, three functions
    Variant(candidate_activation="relu", cell_activation="softsign"),
    Variant(gate_activation="softsign", candidate_activation="linear", cell_activation="relu"),
    Variant(clip=0.4),
    Variant(peephole=True, clip=1.5, gate_activation="hard_sigmoid:0.2,0.5"),
    Variant(proj_size=2),
    Variant(proj_size=3, peephole=True, coupled=True, cell_activation="relu"),
    Variant(without=("forget", "input", "output")),  # the candidate alone has weights
    Variant(peephole=True, without=("input", "output"), clip=2.0),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=repr)
def test_activations_clip_and_projection_reproduce_bit_for_bit(variant):
    params = random_params(3, 4, variant, seed=7)
    R = variant.proj_size or 4
    h0 = np.linspace(-0.9, 0.8, R)
    trace = lstmtrace.run(params, XS * 2.5, h0, [0.5, -1.5, 2.5, 0.1])  # large enough to reach the kinks and the clip
    assert_reproduces(trace, *exec_script(trace.to_python()))


def test_two_hard_sigmoids_are_two_functions():
    variant = VARIANTS[2]
    script = lstmtrace.step(random_params(3, 4, variant), XS[0]).to_python()
    assert "def hard_sigmoid(z):" in script and "def hard_sigmoid_2(z):" in script
    assert "np.clip(0.2 * z + 0.5, 0.0, 1.0)" in script and "np.clip(0.3 * z + -0.1, 0.0, 1.0)" in script


@pytest.mark.parametrize("E, H", [(17, 9), (33, 13)])
def test_sizes_where_one_gates_product_differs_in_the_last_bit(E, H):
    """At these sizes (with OpenBLAS here) W_f @ x differs in the last bit from W_f's rows of the stacked W @ x:
    the script takes the stacked product, as lstmtrace does."""
    rng = np.random.default_rng(0)
    trace = lstmtrace.run(random_params(E, H, seed=1), rng.normal(size=(2, E)), rng.normal(size=H))
    assert_reproduces(trace, *exec_script(trace.to_python()))


@st.composite
def variants(draw):
    settings_ = dict(peephole=draw(st.booleans()),
                     without=tuple(draw(st.lists(st.sampled_from(["forget", "input", "output"]), max_size=2,
                                                 unique=True))),
                     gate_activation=draw(st.sampled_from(["sigmoid", "hard_sigmoid", "hard_sigmoid:0.2,0.5",
                                                           "softsign"])),
                     candidate_activation=draw(st.sampled_from(["tanh", "relu", "linear"])),
                     cell_activation=draw(st.sampled_from(["tanh", "softsign", "linear"])),
                     clip=draw(st.sampled_from([None, 0.5, 3.0])), proj_size=draw(st.sampled_from([None, 1, 3])))
    settings_["coupled"] = draw(st.booleans()) and not {"forget", "input"} & set(settings_["without"])
    return Variant(**settings_)


@settings(max_examples=60, deadline=None)
@given(E=st.integers(1, 20), H=st.integers(1, 20), T=st.integers(1, 3), seed=st.integers(0, 2**16),
       scale=st.sampled_from([0.01, 1.0, 30.0]), reverse=st.booleans(), variant=variants())
def test_any_cell_and_any_numbers_reproduce_bit_for_bit(E, H, T, seed, scale, reverse, variant):
    rng = np.random.default_rng(seed)
    params = Parameters.random(E, H, seed=seed, variant=variant)
    for gate in params.gates:
        params.set(gate, "W", params[gate].W * scale).set(gate, "b", rng.normal(size=H))
    R = variant.proj_size or H
    trace = lstmtrace.run(params, rng.normal(size=(T, E)) * scale, rng.normal(size=R), rng.normal(size=H) * scale,
                          direction="reverse" if reverse else "forward")
    assert_reproduces(trace, *exec_script(trace.to_python()))


def test_floats_that_need_every_digit_and_negative_zero_survive():
    params = Parameters.zeros(2, 2).set("forget", "b", [0.1 + 0.2, -1e-300]).set("input", "W", [[1 / 3, -0.0],
                                                                                                 [2 ** -1074, 1e300]])
    trace = lstmtrace.step(params, [1e-10, -0.0], [-0.0, 7.0], [0.0, -0.0])
    script = trace.to_python()
    assert "0.30000000000000004" in script and "5e-324" in script and "-0.0" in script
    assert_reproduces(trace, *exec_script(script))


# -- what it cannot write -----------------------------------------------------------------------------

def test_weights_over_100000_numbers_are_refused_with_a_pointer_to_npz(tmp_path):
    x = ",".join(["0.5"] * 120)  # E = H = 120: 4·120·(120 + 120 + 1) = 115,680 numbers
    out = tmp_path / "step.py"
    line = assert_error(invoke("step", "--x", x, "--weights", "random", "-o", out), "'--format'", "115,680",
                        "-o cell.npz")
    assert not out.exists(), line
    assert_error(invoke("step", "--x", x, "--weights", "random", "--format", "python"), "100,000")
    # just under the limit is written: E = H = 110 is 97,240 numbers
    assert_ok(invoke("step", "--x", ",".join(["0.5"] * 110), "--weights", "random", "-o", out))
    assert out.exists()


@pytest.mark.parametrize("args, option, words", [
    (["--layer", "all"], "--layer", "this trace has 2 layers"),
    ([], "--direction", "layer 0 runs both ways"),
])
def test_a_stack_is_refused_naming_the_option(tmp_path, args, option, words):
    out = tmp_path / "model.py"
    result = invoke("run", "--weights", FIXTURES / "torch_model_bilstm_state.npz", "--tokens", "3,1,4",
                    "--embedding", "embedding.weight", *args, "-o", out)
    assert_error(result, f"'{option}'", words, "the step as code is one cell's")
    assert not out.exists()


def test_backward_is_refused():
    assert_error(invoke("step", "--backward", "--format", "python"), "'--backward'", "forward step")
    assert_error(invoke("run", "--xs", "1;2", "--backward", "--format", "python"), "'--backward'")


def test_the_library_says_what_it_cannot_write():
    trace = lstmtrace.step(Parameters.identity(2, 2), [1.0, 2.0])
    with pytest.raises(OptionError, match="holds no weights") as e:
        lstmtrace.read_trace(io.StringIO(trace.to_csv())).to_python()
    assert e.value.option == "format"
    stack = lstmtrace.run_stack([[Parameters.random(2, 3)], [Parameters.random(3, 2)]], XS[:, :2])
    with pytest.raises(OptionError, match="2 layers") as e:
        to_python(stack)
    assert e.value.option == "layer"
    with pytest.raises(OptionError, match="backward") as e:
        lstmtrace.backward(trace).to_python()
    assert e.value.option == "backward"


def test_the_readmes_excerpt_and_output_are_the_seed_scripts(tmp_path):
    """The README pastes part of the seed question's script (a ```py block) and of what it prints: both real."""
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The step as code"):readme.index("## Python")]
    excerpt = section.split("```py\n")[1].split("```")[0]
    printed = section.split("```text\n")[1].split("```")[0]
    script = assert_ok(invoke("step", "--format", "python")).stdout
    assert excerpt in script
    path = tmp_path / "step.py"
    path.write_text(script, encoding="utf-8")
    output = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True).stdout
    for line in printed.splitlines():
        assert line == "…" or line in output.splitlines(), line
