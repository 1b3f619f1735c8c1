"""Library first: Parameters.from_spec and Parameters.apply take the command line's spellings and
give the same weights; every error names its setting in ``e.option``, which the CLI maps to its flag."""
import pytest

from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, step
from lstmtrace.errors import OptionError
from lstmtrace.params import WeightSpec

X = [0.5, -1.0, 2.0]


@pytest.fixture
def cell(tmp_path):
    """A weights file with E = 3, H = 2."""
    path = tmp_path / "cell.npz"
    Parameters.random(3, 2, seed=4).apply("input.b=0.5,-0.5").save(path)
    return str(path)


RECIPES = [  # (command-line options, the same as from_spec keywords)
    ([], {}),
    (["--weights", "random:7"], {"weights": "random:7"}),
    (["--weights", "ones", "--bias", "0.25"], {"weights": "ones", "bias": 0.25}),
    (["--weights", "zeros", "--forget-bias", "1"], {"weights": "zeros", "forget_bias": 1.0}),
    (["--set", "forget.U=zeros", "--set", "input.W=1,0,0;0,1,0", "--set", "output.b=0.5,1"],
     {"sets": ["forget.U=zeros", "input.W=1,0,0;0,1,0", "output.b=0.5,1"]}),
    (["--weights", "random", "--bias", "1", "--forget-bias", "-2", "--set", "candidate.W=random:3"],
     {"weights": "random", "bias": 1.0, "forget_bias": -2.0, "sets": ["candidate.W=random:3"]}),
    (["--weights", "CELL", "--forget-bias", "1"], {"weights": "CELL", "forget_bias": 1.0}),
    (["--weights", "CELL", "--weights-layout", "torch", "--set", "forget.b=3"],
     {"weights": "CELL", "layout": "torch", "sets": ["forget.b=3"]}),
]


@pytest.mark.parametrize("options, keywords", RECIPES)
def test_from_spec_gives_what_the_command_line_gives(cell, options, keywords):
    options = [cell if o == "CELL" else o for o in options]
    keywords = {k: cell if v == "CELL" else v for k, v in keywords.items()}
    shell = assert_ok(invoke("step", "--x", "0.5,-1,2", "--hidden-size", 2, *options, "--format", "csv")).stdout
    params = Parameters.from_spec(input_size=3, hidden_size=2, **keywords)
    assert step(params, X).to_csv() == shell


def test_apply_is_set_with_the_command_lines_spelling():
    spelled = Parameters.identity(2, 2).apply("forget.U=zeros", "input.b=1,2", "output.W=0.5")
    by_hand = (Parameters.identity(2, 2).set("forget", "U", "zeros").set("input", "b", [1, 2])
               .set("output", "W", 0.5))
    assert spelled == by_hand


def test_describe_is_the_sentence_the_text_opens_with(cell):
    spec = WeightSpec(cell, forget_bias=1.0, sets=("forget.b=3",))
    assert spec.describe() == "Weights: from cell.npz, forget bias +1, then forget.b=3."
    out = assert_ok(invoke("step", "--x", "1,2,3", "--weights", cell, "--forget-bias", "1", "--set",
                           "forget.b=3")).stdout
    assert " ".join(spec.describe().split()) in " ".join(out.split())


@pytest.mark.parametrize("call, option", [
    (lambda cell: Parameters.from_spec("random:x", 2, 2), "weights"),
    (lambda cell: Parameters.from_spec("no-such-file.npz", 2, 2), "weights"),
    (lambda cell: Parameters.from_spec("identity", 2, 2, layer=1), "layer"),
    (lambda cell: Parameters.from_spec("identity", 2, 2, prefix="encoder"), "prefix"),
    (lambda cell: Parameters.from_spec(cell, layer=3), "layer"),
    (lambda cell: Parameters.from_spec(cell, prefix="encoder"), "prefix"),
    (lambda cell: Parameters.from_spec(cell, 5), "input_size"),
    (lambda cell: Parameters.from_spec(cell, 3, 7), "weights"),
    (lambda cell: Parameters.from_spec(cell, layout="yaml"), "layout"),
    (lambda cell: Parameters.from_spec("identity", 2, 2, sets=["forget.X=1"]), "sets"),
    (lambda cell: Parameters.identity(2, 2).apply("forget.U"), "sets"),
    (lambda cell: Parameters.identity(2, 2).apply("nothing.W=1"), "sets"),
])
def test_every_error_names_its_setting(cell, call, option):
    with pytest.raises(OptionError) as caught:
        call(cell)
    assert caught.value.option == option


@pytest.mark.parametrize("options, flag", [
    (["--weights", "random:x"], "'--weights'"),
    (["--layer", "1"], "'--layer'"),
    (["--set", "forget.X=1"], "'--set'"),
    (["--weights", "CELL", "--prefix", "encoder"], "'--prefix'"),
    (["--weights", "CELL", "--x", "1,2"], "'--x'"),
])
def test_the_command_line_names_the_flag_of_the_setting(cell, options, flag):
    options = [cell if o == "CELL" else o for o in options]
    if "--x" not in options:
        options = ["--x", "1,2,3", *options]
    assert_error(invoke("step", *options), flag)
