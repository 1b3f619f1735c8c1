"""The ``lstmtrace`` command: parses options, calls the library, prints.

numpy and pandas are imported inside the commands, never at the top, so
``lstmtrace --help`` answers at the speed of click alone.
"""
import os
import sys

import click

from lstmtrace import __version__

FORMATS = ("text", "csv", "markdown", "json")
SUFFIX_FORMATS = {".txt": "text", ".csv": "csv", ".md": "markdown", ".json": "json"}
WORDS = ("identity", "zeros", "ones")


class _OneLineErrors(click.Group):
    """A group whose bad-input errors are one line on stderr with exit status 2, never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # plain `lstmtrace`: help, not an error
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.ClickException as e:
            message = " ".join(e.format_message().split())
            if isinstance(e, click.UsageError) and e.ctx is not None and not isinstance(
                    e, click.BadParameter):
                message += f" (see '{e.ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `lstmtrace step | head`: the reader left, nothing to report
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


class Parsed(click.ParamType):
    """An option value read by one of lstmtrace.spec's parsers; its ValueError becomes the option's error."""

    def __init__(self, name: str, parser: str):
        self.name, self.parser = name, parser

    def convert(self, value, param, ctx):
        from lstmtrace import spec

        if not isinstance(value, str):
            return value
        try:
            return getattr(spec, self.parser)(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


VECTOR = Parsed("v1,v2,…", "parse_vector")  # comma-separated finite numbers, e.g. -0.1,0.3,0.1
NUMBER = Parsed("number", "parse_number")  # one finite number


def _output_options(formats):
    def decorate(f):
        f = click.option("--format", "fmt", type=click.Choice(formats), default=None,
                         help=f"What to write [default: from the --output suffix "
                              f"({', '.join(k for k in SUFFIX_FORMATS if SUFFIX_FORMATS[k] in formats)}),"
                              " else text].")(f)
        f = click.option("-o", "--output", metavar="PATH", default="-",
                         help="Write here instead of standard output ('-'). The file appears whole "
                              "or not at all; a failed run never touches an existing one.")(f)
        f = click.option("--precision", type=click.IntRange(1, 17), default=6, show_default=True, metavar="N",
                         help="Significant digits shown in text and Markdown (CSV and JSON always "
                              "keep every digit).")(f)
        f = click.option("--expand", type=click.IntRange(min=0), metavar="UNIT", default=None,
                         help="Also write out one unit's computation term by term, e.g. "
                              "W_f[u,:]·x = 1×(-0.1) + 0×0.3 + … = -0.1.")(f)
        return f
    return decorate


def _format_for(fmt, output, formats):
    """The format asked for, or the one the output's suffix names, or text."""
    if fmt is not None:
        return fmt
    if output in (None, "-"):
        return "text"
    suffix = os.path.splitext(output)[1].lower()
    if suffix in SUFFIX_FORMATS and SUFFIX_FORMATS[suffix] in formats:
        return SUFFIX_FORMATS[suffix]
    known = ", ".join(k for k in SUFFIX_FORMATS if SUFFIX_FORMATS[k] in formats)
    raise click.BadParameter(f"cannot tell the format from {output!r} (known suffixes: {known}); "
                             "name it with --format", param_hint="'-o' / '--output'")


def _check_output(output):
    """Fail before any work when the output cannot be written where asked."""
    if output in (None, "-"):
        return
    if not output.strip():
        raise click.BadParameter("is empty; give a file name, or '-' for standard output",
                                 param_hint="'-o' / '--output'")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"folder {os.path.dirname(output) or folder!r} does not exist",
                                 param_hint="'-o' / '--output'")
    if os.path.isdir(output):
        raise click.BadParameter(f"{output!r} is a folder, not a file", param_hint="'-o' / '--output'")


def _emit(trace, fmt, output, precision, expand, title=None):
    """Render ``trace`` and write it to ``output`` (whole or not at all), or to stdout."""
    from lstmtrace._atomic import atomic_open

    if expand is not None and expand >= trace.hidden_size:
        raise click.BadParameter(f"unit {expand} is not in 0..{trace.hidden_size - 1} "
                                 f"(hidden size H = {trace.hidden_size})", param_hint="'--expand'")
    render = {
        "text": lambda: trace.to_text(precision=precision, expand=expand, title=title),
        "markdown": lambda: trace.to_markdown(precision=precision, expand=expand, title=title),
        "csv": trace.to_csv,
        "json": trace.to_json,
    }[fmt]
    if output in (None, "-"):
        click.echo(render(), nl=False)
    elif fmt == "csv":
        trace.to_csv(output)
    else:
        content = render()
        with atomic_open(output, "w", encoding="utf-8") as f:
            f.write(content)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstmtrace")
def cli():
    """Trace every value inside an LSTM step: W·x, U·h, each gate, c_t and h_t.

    \b
    Start with the worked example (a learner's hand-written step):
        lstmtrace step
    then change one thing and look again:
        lstmtrace step --set forget.b=3
    """


@cli.command()
@click.option("--x", "x", type=VECTOR, default=None,
              help="The input x_t, comma-separated, e.g. --x -0.1,0.3. Without it (and without "
                   "--h/--c/--hidden-size), the worked example is traced.")
@click.option("--h", "h", type=VECTOR, default=None,
              help="The previous hidden state h_{t-1} [default: zeros].")
@click.option("--c", "c", type=VECTOR, default=None,
              help="The previous cell state c_{t-1} [default: zeros].")
@click.option("--hidden-size", type=click.IntRange(min=1), default=None, metavar="H",
              help="H when neither --h nor --c gives it [default: the weights file's, else len(x)].")
@click.option("--weights", default="identity", show_default=True, metavar="SPEC|FILE",
              help="identity (W = np.eye(H, E), U = np.eye(H)), zeros, ones, random or random:SEED "
                   "(uniform in ±1/√H), or an .npz file with torch.nn.LSTMCell's state_dict keys.")
@click.option("--bias", type=NUMBER, default=None,
              help="Set every gate's bias b to this number [default: 0, or the weights file's biases].")
@click.option("--set", "sets", multiple=True, metavar="GATE.PARAM=SPEC",
              help="Change one matrix after --weights/--bias; repeatable. GATE: forget|input|candidate|"
                   "output; PARAM: W|U|b. SPEC for W and U: identity|zeros|ones|random[:SEED], a number "
                   "to fill it, or rows like 1,0;0,1. For b: a number or H comma-separated values.")
@_output_options(FORMATS)
def step(x, h, c, hidden_size, weights, bias, sets, fmt, output, precision, expand):
    """Trace one LSTM step and explain every number in it.

    \b
    The worked example (identity weights, zero biases; why is f 0.475?):
        lstmtrace step
    Your own vectors, as CSV for a spreadsheet:
        lstmtrace step --x -0.1,0.3 --h 0.5,0.2 -o step.csv
    A teacher's comparison: forget gate only, U zeroed:
        lstmtrace step --x 10,0,0 --h 0,0,10 --c 1,1,1 --weights zeros \\
            --set forget.W=identity --set forget.U=zeros
    One unit written out term by term:
        lstmtrace step --expand 2
    """
    import numpy as np

    import lstmtrace
    from lstmtrace.examples import SEED_QUESTION

    fmt = _format_for(fmt, output, FORMATS)
    _check_output(output)
    title = None
    if x is None:
        given = [name for name, v in (("--h", h), ("--c", c), ("--hidden-size", hidden_size))
                 if v is not None]
        if given:
            raise click.UsageError(f"{given[0]} was given without --x; give --x too "
                                   "(or nothing at all, for the worked example)")
        x, h, c = (np.array(SEED_QUESTION[k]) for k in ("x", "h_prev", "c_prev"))
        title = ("The worked example: a learner's hand-written step, with x and h_prev from "
                 "their question and c_prev = 0.")
    params = _parameters(weights, bias, sets, len(x), _hidden_size(x, h, c, hidden_size))
    title = " ".join(filter(None, [title, _describe(weights, bias, sets)]))
    try:
        trace = lstmtrace.step(params, x, h, c)
    except lstmtrace.NonFiniteError as e:
        raise click.ClickException(str(e))
    _emit(trace, fmt, output, precision, expand, title)


def _hidden_size(x, h, c, hidden_size):
    """H from --h, --c or --hidden-size (None to leave it to the weights), checking they agree."""
    sizes = [(name, len(v)) for name, v in (("--h", h), ("--c", c)) if v is not None]
    if hidden_size is not None:
        sizes.append(("--hidden-size", hidden_size))
    for name, n in sizes[1:]:
        if n != sizes[0][1]:
            raise click.BadParameter(f"gives hidden size {n} but {sizes[0][0]} gives {sizes[0][1]}",
                                     param_hint=f"'{name}'")
    return sizes[0][1] if sizes else None


def _parameters(weights, bias, sets, E, H):
    """The Parameters that --weights, --bias and --set describe, for input size E and hidden size H."""
    from lstmtrace.params import Parameters, WEIGHT_SPECS

    hint = "'--weights'"
    if weights in WORDS or weights.split(":")[0] == "random":
        try:
            params = Parameters.from_spec(weights, E, H if H is not None else E)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint=hint)
    elif os.path.isfile(weights):
        try:
            params = Parameters.load(weights)
        except (OSError, ValueError) as e:
            raise click.BadParameter(str(e), param_hint=hint)
        if params.input_size != E:
            raise click.BadParameter(f"has {E} values but the weights in {weights} have input size "
                                     f"E = {params.input_size}", param_hint="'--x'")
        if H is not None and H != params.hidden_size:
            raise click.BadParameter(f"hidden size {H} (from --h, --c or --hidden-size) does not match "
                                     f"hidden size H = {params.hidden_size} of {weights}", param_hint=hint)
    else:
        raise click.BadParameter(f"{weights!r} is neither {WEIGHT_SPECS} nor a file that exists",
                                 param_hint=hint)
    if bias is not None:
        for gate in params.gates:
            params.set(gate, "b", bias)
    for item in sets:
        target, eq, spec = item.partition("=")
        gate, dot, param = target.partition(".")
        if not eq or not dot or not spec.strip():
            raise click.BadParameter(f"{item!r} is not GATE.PARAM=SPEC, e.g. forget.U=zeros",
                                     param_hint="'--set'")
        try:
            params.set(gate.strip(), param.strip(), spec)
        except ValueError as e:
            raise click.BadParameter(f"{item}: {e}", param_hint="'--set'")
    return params


def _describe(weights, bias, sets):
    words = {"identity": "identity (W = np.eye(H, E), U = np.eye(H))", "zeros": "all zeros",
             "ones": "all ones"}
    text = words.get(weights) or (f"{weights} (uniform in ±1/√H)" if weights.startswith("random")
                                  else f"from {os.path.basename(weights)}")
    if bias is not None:
        text += f", every bias {bias:g}"
    elif not os.path.isfile(weights):
        text += ", zero biases"
    if sets:
        text += ", then " + ", ".join(sets)
    return f"Weights: {text}."


@cli.command()
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@_output_options(("text", "markdown"))
def show(trace, fmt, output, precision, expand):
    """Explain a saved CSV trace, as `lstmtrace step` does.

    \b
    Save a trace, open it in a spreadsheet, and read it again later:
        lstmtrace step --x 1,2 --h 0.5,0 -o step.csv
        lstmtrace show step.csv --expand 1
    """
    from lstmtrace.trace import read_trace

    fmt = _format_for(fmt, output, ("text", "markdown"))
    _check_output(output)
    try:
        loaded = read_trace(trace)
    except (OSError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="'TRACE'")
    _emit(loaded, fmt, output, precision, expand)


main = cli
