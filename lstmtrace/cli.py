"""The ``lstmtrace`` command: parses options, calls the library, prints.

numpy and pandas are imported inside the commands, never at the top, so
``lstmtrace --help`` answers at the speed of click alone.
"""
import contextlib
import dataclasses
import functools
import inspect
import os
import sys

import click

from lstmtrace import __version__
from lstmtrace.formats import FORMATS, format_for, missing, reader_needs

TRACE_FORMATS = tuple(FORMATS)
DIFF_FORMATS = tuple(name for name, f in FORMATS.items() if f.diff)
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click ≥ 8.2 raises it for a bare group


class _Interrupted(click.ClickException):
    """Ctrl-C: the conventional exit status 128 + SIGINT, after every temporary file is gone."""

    exit_code = 130

    def __init__(self):
        super().__init__("interrupted (Ctrl-C); no partial or temporary file was left")


class _InternalError(click.ClickException):
    """Something lstmtrace did not expect: still one line and exit 2, with the way to the traceback."""

    def __init__(self, error: BaseException):
        text = " ".join(str(error).split()) or "no message"
        super().__init__(f"internal error, a bug in lstmtrace ({type(error).__name__}: {text}); please "
                         "report it with the command you ran (LSTMTRACE_DEBUG=1 shows the traceback)")


class _OneLineErrors(click.Group):
    """A group whose bad-input errors are one line on stderr with exit status 2, never a traceback.

    Ctrl-C exits with 130; an error lstmtrace did not foresee is one "internal error" line.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # before click turns it into a bare "Aborted!" with status 1
            if _AS_PROGRAM:  # the same Ctrl-C can come twice (pyarrow's and Python's own): once is enough
                import signal

                signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise _Interrupted() from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except Exception as e:  # the last line of defence: never a traceback
            if os.environ.get("LSTMTRACE_DEBUG"):
                raise
            raise _InternalError(e) from e

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            sys.stdout.flush()  # a full disk behind `> file` shows here, not as a warning at exit
        except _NO_ARGS_IS_HELP as e:  # plain `lstmtrace`: help, not an error
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.ClickException as e:
            message = " ".join(e.format_message().split())
            if isinstance(e, click.UsageError) and e.ctx is not None and not isinstance(
                    e, click.BadParameter):
                message += f" (see '{e.ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(e.exit_code if isinstance(e, _Interrupted) else 2)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `lstmtrace step | head`: the reader left, nothing to report
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except OSError as e:  # standard output itself failed: `lstmtrace step > /dev/full`
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            click.echo(f"Error: cannot write to standard output: {e.strerror or e}", err=True)
            sys.exit(2)
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


class LayerNumber(click.ParamType):
    """--layer: a layer number from 0, or ``all``."""

    name = "K|all"

    def convert(self, value, param, ctx):
        if not isinstance(value, str) or value == "all":
            return value
        if value.strip().isdigit():
            return int(value)
        self.fail(f"{value!r} is neither a layer number (0, 1, …) nor all", param, ctx)


VECTOR = Parsed("v1,v2,…", "parse_vector")  # comma-separated finite numbers, e.g. -0.1,0.3,0.1
NUMBER = Parsed("number", "parse_number")  # one finite number


def _output_options(formats, expand=True):
    def decorate(f):
        f = click.option("--format", "fmt", type=click.Choice(formats), default=None,
                         help=f"What to write [default: from the --output suffix "
                              f"({', '.join(FORMATS[name].suffix for name in formats)}), else text].")(f)
        f = click.option("-o", "--output", metavar="PATH", default="-",
                         help="Write here instead of standard output ('-'). The file appears whole "
                              "or not at all; a failed run never touches an existing one.")(f)
        f = click.option("--precision", type=click.IntRange(1, 17), default=6, show_default=True, metavar="N",
                         help="Significant digits shown in text and Markdown (CSV and JSON always "
                              "keep every digit).")(f)
        if not expand:
            return f
        f = click.option("--expand", type=click.IntRange(min=0), metavar="UNIT", default=None,
                         help="Also write out one unit's computation term by term, e.g. "
                              "W_f[u,:]·x = 1*(-0.1) + 0*0.3 + … = -0.1.")(f)
        f = click.option("--brief", is_flag=True,
                         help="Text and Markdown without the notes and the glossary: the equations, the "
                              "tables and the result, for readers who know them.")(f)
        return f
    return decorate


def _format_for(fmt, output, formats):
    """The format asked for, or the one the output's suffix names, or text; refused before any work when
    the optional module its writer needs is not installed (FORMATS' ``requires``)."""
    named, hint = fmt, "'--format'"
    if fmt is None and output in (None, "-"):
        named = "text"
    elif fmt is None:
        named, hint = format_for(output, formats), "'-o' / '--output'"
        if named is None:
            known = ", ".join(FORMATS[name].suffix for name in formats)
            raise click.BadParameter(f"cannot tell the format from {output!r} (known suffixes: {known}); "
                                     "name it with --format", param_hint=hint)
    needs = missing(FORMATS[named].requires, f"{named.capitalize()} output") if named in FORMATS else None
    if needs:
        raise click.BadParameter(needs, param_hint=hint)
    return named


def _check_readers(inputs):
    """Fail before any work when a weights file's reader needs an optional module that is not installed."""
    for option, path in inputs:
        if option in ("--weights", "--show") and path:
            needs = missing(reader_needs(path), f"reading {os.path.basename(path)}")
            if needs:
                raise click.BadParameter(needs, param_hint=f"'{option}'")


def _check_output(output, inputs=()):
    """Fail before any work when the output cannot be written where asked, or would replace an input.

    ``inputs`` are the (option, path) pairs the command reads; an output that is the same
    file as one of them (``a.csv``, ``./a.csv``, a symlink or a hard link to it) is refused.
    """
    _check_readers(inputs)
    if output in (None, "-"):
        return
    hint = "'-o' / '--output'"
    if not output.strip():
        raise click.BadParameter("is empty; give a file name, or '-' for standard output", param_hint=hint)
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"folder {os.path.dirname(output) or folder!r} does not exist", param_hint=hint)
    if os.path.isdir(output):
        raise click.BadParameter(f"{output!r} is a folder, not a file", param_hint=hint)
    for option, path in inputs:
        if path is not None and _same_file(output, path):
            raise click.BadParameter(f"{output!r} is the same file as {option} {path!r}, which this command "
                                     "reads; lstmtrace never writes over its input: choose another output",
                                     param_hint=hint)


def _same_file(output, path):
    """Whether writing ``output`` would replace the existing file ``path`` (through any spelling or link)."""
    try:
        return os.path.isfile(path) and os.path.exists(output) and os.path.samefile(output, path)
    except (OSError, ValueError):  # ValueError: a NUL byte in a name
        return False


def _weights_inputs(**files):
    """The (option, path) pairs of the weights files among ``--weights``-like options (not the words)."""
    from lstmtrace.params import is_weight_word

    return [(f"--{name.replace('_', '-')}", spec) for name, spec in files.items()
            if spec is not None and not is_weight_word(spec)]


@contextlib.contextmanager
def _writing(output):
    """A write that fails (disk full, file too large, permissions) becomes one line naming the file."""
    try:
        yield
    except OSError as e:
        reason = e.strerror or " ".join(str(e).split()) or type(e).__name__
        raise click.ClickException(f"cannot write {output!r}: {reason}; nothing was written there") from None


SPREADSHEET_ROWS = 1_048_576
"""The most rows Excel and LibreOffice Calc show of a sheet (2**20)."""


def _warn_if_too_long(lines, output):
    """One warning on stderr when a CSV has more lines than a spreadsheet shows; the file is still whole."""
    if lines > SPREADSHEET_ROWS:
        where = "standard output" if output in (None, "-") else output
        click.echo(f"Warning: {where} has {lines:,} lines, and Excel and LibreOffice show only the first "
                   f"{SPREADSHEET_ROWS:,} rows. For a spreadsheet, try --csv-layout wide (one row per "
                   "quantity), a shorter sequence, or Parquet (-o trace.parquet); the CSV is written in full.",
                   err=True)


def _emit(trace, fmt, output, precision, expand, title=None, steps=None, layout=None, brief=False):
    """Render ``trace`` and write it to ``output`` (whole or not at all), or to stdout."""
    from lstmtrace import formats
    from lstmtrace.errors import OptionError
    from lstmtrace.spec import parse_steps
    from lstmtrace.tracefile import csv_lines

    if FORMATS[fmt].binary and output in (None, "-"):
        raise click.BadParameter(f"{fmt.capitalize()} is binary: give -o FILE{FORMATS[fmt].suffix}", param_hint="'--format'")
    if layout is not None and fmt != "csv":
        raise click.BadParameter(f"{layout} is a CSV layout, and the format is {fmt}",
                                 param_hint="'--csv-layout'")
    cells = list(getattr(trace, "traces", {None: trace}).values())  # a Stack's, or the one trace
    H = max(cell.hidden_size for cell in cells)
    if expand is not None and expand >= H:
        raise click.BadParameter(f"unit {expand} is not in 0..{H - 1} (hidden size H = {H}"
                                 f"{', the largest of the cells' if len(cells) > 1 else ''})", param_hint="'--expand'")
    if brief and fmt not in ("text", "markdown"):
        raise click.BadParameter(f"leaves notes out of text and Markdown, and the format is {fmt}",
                                 param_hint="'--brief'")
    if steps is not None and steps.strip().lower() != "all":
        try:
            steps = parse_steps(steps, trace.steps)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'--steps'") from None
    title = " ".join(filter(None, [title, click.get_current_context().meta.get("lstmtrace.title")]))
    options = dict(precision=precision, expand=expand, title=title, layout=layout or "long", brief=brief,
                   steps="all" if isinstance(steps, str) else steps)
    if fmt == "csv":
        _warn_if_too_long(csv_lines(trace, layout or "long"), output)
    bar, units = click.get_current_context().meta.get("lstmtrace.progress", (None, 0))
    try:
        if fmt in ("text", "markdown") and (output in (None, "-") or bar is not None):
            from lstmtrace.atomic import atomic_open
            from lstmtrace.text import write as explain

            text_options = {k: v for k, v in options.items() if k != "layout"}
            if output in (None, "-"):  # streamed step by step, as it is made
                stream = _Stdout() if bar is None else _Advancing(_Stdout(), bar, units)
                return explain(trace, stream, markdown=fmt == "markdown", **text_options)
            with _writing(output), atomic_open(output, "w", encoding="utf-8", newline="") as f:
                explain(trace, _Advancing(f, bar, units), markdown=fmt == "markdown", **text_options)
        elif output in (None, "-"):
            return _write(formats.render(trace, fmt, **options), output)
        elif bar is not None and fmt == "csv" and not hasattr(trace, "traces") and layout in (None, "long"):
            done = [0]

            def advance(share):  # the bar's writing half, by the share of rows each part wrote
                step = min(units - done[0], round(share * units))
                done[0] += step
                bar.update(step)

            with _writing(output):
                trace.to_csv(output, progress=advance)
        else:
            with _writing(output):
                formats.save(trace, output, fmt, **options)
        if bar is not None:  # written: the bar ends full
            bar.update(bar.length - bar.pos)
    except ImportError as e:  # Parquet without pyarrow
        raise click.BadParameter(str(e), param_hint="'--format'") from None
    except OptionError as e:  # a format that cannot hold this trace: --format python of a stack, say
        raise click.BadParameter(" ".join(str(e).split()), param_hint=f"'--{e.option}'") from None


_FROM_TOKENS = "(--tokens)"  # what --xs holds when the sequence was looked up from token ids


def _token_options(f):
    """--tokens and --embedding: the sequence as the embedding rows of token ids, instead of --xs.

    Below _weight_options, so it sees the WeightSpec: the embedding is read from the weights file.
    """

    @functools.wraps(f)
    def command(**kwargs):
        tokens, key = kwargs.pop("tokens"), kwargs.pop("embedding")
        if tokens is None and key is None:
            return f(**kwargs)
        if tokens is None:
            raise click.UsageError("--embedding looks up token ids: give --tokens too")
        if kwargs.get("xs") is not None:
            raise click.UsageError("give --xs or --tokens, not both")
        if key is None:
            raise click.UsageError("--tokens needs --embedding KEY: the embedding table that turns ids into x")
        weights = kwargs["weights"]
        from lstmtrace.params import is_weight_word

        if is_weight_word(weights.weights):
            raise click.BadParameter(f"is read from the weights file, and --weights is {weights.weights!r}",
                                     param_hint="'--embedding'")
        meta = click.get_current_context().meta
        meta["lstmtrace.sequence"], meta["lstmtrace.title"] = _embedded(tokens, key, weights)
        kwargs["xs"] = _FROM_TOKENS
        return f(**kwargs)

    command = click.option("--embedding", default=None, metavar="KEY",
                           help="With --tokens: the embedding table in the weights file, e.g. the state_dict "
                                "key embedding.weight (V×E, one row per token id).")(command)
    return click.option("--tokens", default=None, metavar="IDS|FILE",
                        help="Token ids instead of --xs, e.g. 3,1,4 (or a file of them): x_t is row id_t of "
                             "--embedding, as the model's embedding layer computes it.")(command)


def _embedded(tokens, key, weights):
    """The sequence of --tokens looked up in --embedding, and a sentence saying so for the text."""
    from lstmtrace.errors import OptionError
    from lstmtrace.spec import read_tokens
    from lstmtrace.weights import read_embedding

    try:
        ids = read_tokens(tokens)
    except (OSError, ValueError) as e:
        raise click.BadParameter(" ".join(str(e).split()), param_hint="'--tokens'") from None
    try:
        table, padding = read_embedding(weights.weights, key, with_padding=True)
    except OptionError as e:
        raise click.BadParameter(" ".join(str(e).split()), param_hint="'--embedding'") from None
    except (OSError, ValueError, ImportError) as e:
        raise click.BadParameter(" ".join(str(e).split()), param_hint="'--weights'") from None
    if ids.max() >= len(table):
        raise click.BadParameter(f"token id {int(ids.max())} is beyond the {len(table)} rows of --embedding "
                                 f"{key!r} (ids 0 to {len(table) - 1})", param_hint="'--tokens'")
    skipped = [int(i) for i in ids if int(i) in padding]
    if skipped:
        raise click.BadParameter(f"token id {skipped[0]} is padding for --embedding {key!r} (mask_zero): the model "
                                 "skips its steps, keeping h and c, which lstmtrace does not trace; leave it out",
                                 param_hint="'--tokens'")
    shown = ", ".join(str(int(i)) for i in ids[:8]) + (", …" if len(ids) > 8 else "")
    note = (f"x_t is row id_t of the embedding {key} ({table.shape[0]}×{table.shape[1]}), as the model's "
            f"embedding layer looks it up: tokens {shown}.")
    return table[ids], note


def _batch_option(f):
    """--batch-index: which sequence of a B×T×E --xs array to trace (kept where _sequence reads it)."""

    @functools.wraps(f)
    def command(**kwargs):
        batch_index = kwargs.pop("batch_index")
        if batch_index is not None and kwargs.get("xs") is None:
            raise click.UsageError("--batch-index picks one sequence of an --xs array; give --xs too")
        click.get_current_context().meta["lstmtrace.batch_index"] = batch_index
        return f(**kwargs)

    return click.option("--batch-index", type=click.IntRange(min=0), default=None, metavar="B",
                        help="With an --xs array of shape B×T×E (.npy, .npz): trace sequence B of the batch.")(
        command)


def _state_options(f):
    """--h, --c and --hidden-size: the state a step or a sequence starts from."""
    f = click.option("--hidden-size", type=click.IntRange(min=1), default=None, metavar="H",
                     help="H when neither --h nor --c gives it [default: the weights file's, "
                          "else the input size E].")(f)
    f = click.option("--c", "c", type=VECTOR, default=None,
                     help="The cell state to start from: c_{t-1} of a step, c_0 of a sequence "
                          "[default: zeros].")(f)
    f = click.option("--h", "h", type=VECTOR, default=None,
                     help="The hidden state to start from: h_{t-1} of a step, h_0 of a sequence "
                          "[default: zeros].")(f)
    return f


def _backward_options(f):
    """--backward and the loss it differentiates; the command gets one dict (None without --backward)."""
    options = [
        click.option("--backward", is_flag=True,
                     help="Also trace the backward pass: dL/d every quantity and dL/dW, dU, db, "
                          "by the chain rule (through every step of a sequence)."),
        click.option("--loss", type=click.Choice(["sum", "mse"]), default=None,
                     help="sum: L = Σ h_T [default]; mse: L = ½‖h_T − target‖², with --target."),
        click.option("--target", type=VECTOR, default=None, help="The target h for --loss mse (H values)."),
        click.option("--loss-on", type=click.Choice(["last", "all"]), default="last", show_default=True,
                     help="Apply the loss to the last step's h, or sum it over every step's."),
        click.option("--dh", type=VECTOR, default=None,
                     help="Instead of a loss, the upstream gradient dL/dh_T (H values)."),
        click.option("--dc", type=VECTOR, default=None,
                     help="With --dh, an upstream dL/dc_T too (H values) [default: zeros]."),
        click.option("--param-grads", type=click.Choice(["total", "per-step", "none"]), default=None,
                     help="How to keep dL/dW, dU, db: total, summed over the steps in rows at step 0 "
                          "[default]; per-step, each step's own contribution in its rows (T times the rows); "
                          "none, only dL/d the traced quantities."),
    ]
    names = ("backward", "loss", "target", "loss_on", "dh", "dc", "param_grads")

    @functools.wraps(f)
    def command(**kwargs):
        chosen = {name: kwargs.pop(name) for name in names}
        given = [n for n in names[1:] if chosen[n] is not None and not (n == "loss_on" and chosen[n] == "last")]
        if not chosen.pop("backward"):
            if given:
                raise click.BadParameter("is for the backward pass: add --backward",
                                         param_hint=f"'--{given[0].replace('_', '-')}'")
            return f(gradients=None, **kwargs)
        if chosen["dh"] is not None and chosen["loss"] is not None:
            raise click.BadParameter("is given directly, so there is no --loss", param_hint="'--dh'")
        if chosen["dc"] is not None and chosen["dh"] is None:
            raise click.BadParameter("goes with --dh", param_hint="'--dc'")
        if chosen["loss"] == "mse" and chosen["target"] is None:
            raise click.BadParameter("--loss mse needs a --target (H values)", param_hint="'--target'")
        if chosen["target"] is not None and chosen["loss"] != "mse":
            raise click.BadParameter("is for --loss mse", param_hint="'--target'")
        chosen["loss"] = chosen["loss"] or "sum"
        chosen["param_grads"] = chosen["param_grads"] or "total"
        return f(gradients=chosen, **kwargs)

    for option in reversed(options):
        command = option(command)
    return command


def _weight_options(f):
    """Where the weights come from, and the changes made to them; the command gets one WeightSpec."""
    options = [
        click.option("--weights", default="identity", show_default=True, metavar="SPEC|FILE",
                     help="identity (W = np.eye(H, E), U = np.eye(H)), zeros, ones, random or "
                          "random:SEED (uniform in ±1/√H), or a file: .npz (PyTorch or Keras keys), "
                          ".pt/.pth (a PyTorch state_dict), .keras, .h5/.weights.h5 (Keras 3 or 2), .onnx. "
                          "A .keras, a model .h5 or an .onnx says its cell's activations itself."),
        click.option("--layer", type=LayerNumber(), default=None, metavar="K|all",
                     help="Which layer of a multi-layer torch.nn.LSTM or Keras model, or which LSTM node of "
                          "an ONNX graph [default: 0]; all (with run): every layer in order, each fed the "
                          "previous one's h. With a saved stack TRACE: the layer to show or draw."),
        click.option("--direction", type=click.Choice(["forward", "reverse", "both"]), default=None,
                     help="Which half of a bidirectional layer: forward, reverse (runs over x_T … x_1; steps "
                          "stay in time order) or both [default: every direction the layer runs]."),
        click.option("--prefix", default=None, metavar="P",
                     help="The module whose LSTM to read from a state_dict, e.g. encoder.lstm "
                          "[default: the only one]."),
        click.option("--weights-layout", type=click.Choice(["torch", "keras"]), default=None,
                     help="How to read an .npz: torch (weight_ih, weight_hh, …) or keras (kernel, "
                          "recurrent_kernel, bias) [default: from its keys]."),
        click.option("--layout", "old_layouts", type=click.Choice(["torch", "keras", "long", "wide"]),
                     multiple=True, hidden=True,
                     help="Deprecated: --weights-layout torch|keras, or --csv-layout long|wide."),
        click.option("--bias", type=NUMBER, default=None,
                     help="Set every gate's bias b to this number [default: 0, or the file's biases]."),
        click.option("--forget-bias", type=NUMBER, default=None, metavar="NUMBER",
                     help="Add this to the forget gate's bias, as TensorFlow's LSTMCell(forget_bias=1.0) "
                          "does when it runs (Keras' unit_forget_bias is already in its saved bias)."),
        click.option("--variant", "variant_name", default=None, metavar="NAME",
                     help="An LSTM variant by Greff et al.'s name: np (no peepholes: the default, PyTorch's), "
                          "v (peepholes), nig, nfg, nog (no input, forget, output gate), niaf, noaf (no "
                          "input, output activation), cifg (coupled gates). The options below change it."),
        click.option("--peephole", is_flag=True, default=None,
                     help="Peephole connections: f and i also see P⊙c_prev, o sees P⊙c."),
        click.option("--coupled", is_flag=True, default=None, help="Coupled input and forget gates: f = 1 − i."),
        click.option("--without", multiple=True, type=click.Choice(["forget", "input", "output"]),
                     help="Take this gate away (it is the constant 1); repeatable."),
        click.option("--activation", "activations", multiple=True, metavar="SLOT=NAME",
                     help="SLOT: gate (f, i, o), candidate (c̃) or cell (what h = o⊙act(c) applies); NAME: "
                          "sigmoid, tanh, relu, linear, softsign, hard_sigmoid (Keras 3's) or "
                          "hard_sigmoid:ALPHA,BETA (ONNX's, Keras 2's: 0.2,0.5); repeatable."),
        click.option("--clip", type=NUMBER, default=None, metavar="C",
                     help="Bound every gate's pre-activation to [−C, C] before its activation, as ONNX's clip."),
        click.option("--proj-size", type=click.IntRange(min=1), default=None, metavar="P",
                     help="PyTorch's projection: h = W_hr·(o⊙tanh(c)) with P units (--h then takes P values)."),
        click.option("--set", "sets", multiple=True, metavar="GATE.PARAM=SPEC",
                     help="Change one matrix last; repeatable. GATE: forget|input|candidate|output; "
                          "PARAM: W|U|b, and P with --peephole (hidden.W_hr with --proj-size). SPEC for W "
                          "and U: identity|zeros|ones|random[:SEED], a number to fill it, or rows like "
                          "1,0;0,1. For b and P: a number or H comma-separated values."),
    ]

    @functools.wraps(f)
    def command(**kwargs):
        from lstmtrace.params import WeightSpec

        _old_layouts(kwargs.pop("old_layouts"), kwargs)
        given = {name: kwargs.pop(name) for name in VARIANT_OPTIONS}
        variant = _variant(given)
        spec = WeightSpec(weights=kwargs.pop("weights"), layer=kwargs.pop("layer"), prefix=kwargs.pop("prefix"),
                          layout=kwargs.pop("weights_layout"), bias=kwargs.pop("bias"),
                          forget_bias=kwargs.pop("forget_bias"), sets=tuple(kwargs.pop("sets")), variant=variant,
                          direction=kwargs.pop("direction"))
        if "variant_options" in inspect.signature(f).parameters:  # diff builds one variant per side
            kwargs["variant_options"] = given
        return f(weights=spec, **kwargs)

    for option in reversed(options):
        command = option(command)
    return command


VARIANT_OPTIONS = ("variant_name", "peephole", "coupled", "without", "activations", "clip", "proj_size")
_VARIANT_FLAGS = {"variant": "--variant", "peephole": "--peephole", "coupled": "--coupled", "without": "--without",
                  "activation": "--activation", "clip": "--clip", "proj_size": "--proj-size"}


def _variant(given, preset_flag="--variant"):
    """The Variant the variant options describe (None for the default), checked: lstmtrace computes it.
    ``preset_flag`` is the option that gave the preset name (diff's --a-variant, say)."""
    from lstmtrace.errors import OptionError
    from lstmtrace.variant import Variant

    typed = {{"variant_name": "variant", "activations": "activation"}.get(k, k)
             for k, v in given.items() if v not in (None, ())}  # as OptionError.option spells them
    context = click.get_current_context(silent=True)
    if context is not None:  # so that a weights file's contradiction names an option the user typed
        context.meta["lstmtrace.variant_typed"] = [o for o in _VARIANT_FLAGS if o in typed]
    if not typed:
        return None
    try:
        options = {k: v for k, v in given.items() if k != "variant_name"}
        return Variant.from_options(given["variant_name"], **options).check()
    except OptionError as e:  # the flag the user typed, or --variant when a preset brought the setting
        flag = _VARIANT_FLAGS.get(e.option, preset_flag) if e.option != "variant" else preset_flag
        raise click.BadParameter(str(e), param_hint=f"'{flag if e.option in typed else preset_flag}'") from None


def _old_layouts(values, kwargs):
    """The deprecated --layout (0.7), which meant two things: put each value where it belongs now."""
    if not values:
        return
    click.echo("Warning: --layout is deprecated and goes in 0.9: use --weights-layout torch|keras to read an "
               ".npz, --csv-layout long|wide to write a CSV.", err=True)
    for option, choices in (("weights_layout", ("torch", "keras")), ("csv_layout", ("long", "wide"))):
        chosen = sorted({v for v in values if v in choices})
        if not chosen:
            continue
        if option not in kwargs:
            raise click.BadParameter(f"{chosen[0]} is a CSV layout, and this command writes no trace CSV",
                                     param_hint="'--layout'")
        given = sorted(set(chosen) | ({kwargs[option]} if kwargs[option] else set()))
        if len(given) > 1:
            raise click.BadParameter(f"{' and '.join(given)} cannot both hold", param_hint="'--layout'")
        kwargs[option] = given[0]


def _csv_layout_option(f):
    return click.option("--csv-layout", type=click.Choice(["long", "wide"]), default=None,
                        help="CSV with one row per value (long), or one row per step, gate and quantity "
                             "with a column per unit, for spreadsheets (wide) [default: long].")(f)


def _check_option(f):
    """--check QUANTITY[@T]=VALUES: numbers computed by hand, checked against the trace (see lstmtrace.check)."""
    return click.option(
        "--check", "checks", multiple=True, metavar="QUANTITY[@T]=VALUES",
        help="Check numbers you computed by hand, to the digits you wrote, and name the common mistake that "
             "reproduces any that differ; repeatable. QUANTITY as the trace names it (forget.act, input.preact, "
             "cell.c, hidden.tanh(c), …) or f, i, g, o, c, h; VALUES one per unit, comma-separated; for run, "
             "one row per step from step 1 split by ';', or @T to start at step T. The output is then the "
             "check report (text, markdown; csv or json: its per-unit table); exit status 0 when all agree, "
             "1 when any differs.", callback=_parsed_checks)(f)


def _parsed_checks(ctx, param, checks):
    """Each --check's spelling, checked before any work is done (its quantity and values are checked
    against the trace once it is made)."""
    if checks:
        from lstmtrace.check import parse_check
        from lstmtrace.errors import OptionError

        for spec in checks:
            try:
                parse_check(spec)
            except OptionError as e:
                raise click.BadParameter(" ".join(str(e).split()), ctx, param) from None
    return checks


def _emit_check(trace, checks, fmt, output, expand=None, steps=None, layout=None, brief=False):
    """The report of --check, written as _emit writes a trace; the exit status is 0 when all agree, else 1."""
    from lstmtrace.check import check
    from lstmtrace.errors import OptionError

    for name, value in (("--expand", expand), ("--steps", steps), ("--csv-layout", layout),
                        ("--brief", brief or None)):
        if value is not None:
            raise click.BadParameter("is for the explanation of the trace; with --check the output is the "
                                     "check report", param_hint=f"'{name}'")
    if fmt not in ("text", "markdown", "csv", "json"):
        raise click.BadParameter(f"--check writes text, markdown, csv or json (its per-unit table), not {fmt}",
                                 param_hint="'--format'")
    try:
        report = check(trace, list(checks))
    except OptionError as e:
        raise click.BadParameter(" ".join(str(e).split()), param_hint="'--check'") from None
    if fmt == "csv":
        content = report.table.to_csv(index=False, lineterminator="\n")
    elif fmt == "json":
        content = report.table.to_json(orient="records", double_precision=15) + "\n"
    else:
        content = report.to_markdown() if fmt == "markdown" else report.to_text()
    _write(content, output)
    click.get_current_context().exit(0 if report.agrees else 1)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lstmtrace")
def cli():
    """Trace every value inside an LSTM step: W·x, U·h, each gate, c_t and h_t.

    \b
    Start with the worked example (a learner's hand-written step):
        lstmtrace step
    then change one thing and look again:
        lstmtrace step --set forget.b=3
    or follow a sequence through a trained PyTorch model's layer:
        lstmtrace run --weights model.pt --prefix encoder.lstm --xs inputs.csv
    and see where two weight choices part ways:
        lstmtrace diff --x 1,2 --h 0.5,-1 --a-set forget.U=zeros --b-set forget.U=identity
    """


@cli.command()
@click.option("--x", "x", type=VECTOR, default=None,
              help="The input x_t, comma-separated, e.g. --x -0.1,0.3. Without it (and without "
                   "--h/--c/--hidden-size), the worked example is traced.")
@_state_options
@_weight_options
@_backward_options
@_check_option
@_csv_layout_option
@_output_options(TRACE_FORMATS)
def step(x, h, c, hidden_size, weights, gradients, checks, csv_layout, fmt, output, precision, expand, brief):
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
    Check the forget gate you computed by hand (exit status 1 if it differs):
        lstmtrace step --check f=0.47502081,0.68997448,0.549834,0.4875026,0.66818777
    A live spreadsheet: change a weight and every formula recomputes (needs XlsxWriter):
        lstmtrace step -o step.xlsx
    """
    import lstmtrace

    fmt = _format_for(fmt, output, TRACE_FORMATS)
    _check_output(output, _weights_inputs(weights=weights.weights))
    title = None
    if x is None:
        given = [name for name, v in (("--h", h), ("--c", c), ("--hidden-size", hidden_size))
                 if v is not None]
        if given:
            raise click.UsageError(f"{given[0]} was given without --x; give --x too "
                                   "(or nothing at all, for the worked example)")
        x, h, c = _worked_example()
        if weights.variant is not None and weights.variant.proj_size is not None:
            raise click.BadParameter(f"the worked example's h_prev has {len(h)} units, and a projection gives h "
                                     f"{weights.variant.proj_size}: give --x and --h ({weights.variant.proj_size} "
                                     "values) too", param_hint="'--proj-size'")
        title = ("The worked example: a learner's hand-written step, with x and h_prev from "
                 "their question and c_prev = 0.")
    params = _parameters(weights, len(x), _hidden_size(h, c, hidden_size, weights), "--x")
    title = " ".join(filter(None, [title, weights.describe(), params.variant_note(), _describe_loss(gradients)]))
    trace = _with_gradients(_traced(lstmtrace.step, params, x, h, c), gradients)
    if checks:
        return _emit_check(trace, checks, fmt, output, expand, layout=csv_layout, brief=brief)
    _emit(trace, fmt, output, precision, expand, title, layout=csv_layout, brief=brief)


@cli.command()
@click.option("--xs", default=None, metavar="FILE|ROWS",
              help="The sequence x_1…x_T, one x_t per row (required, or --tokens): a CSV or whitespace-separated text file "
                   "(a header row is skipped), an .npy of shape T×E, inline rows like '1,2;3,4', or - to "
                   "read either kind of file from standard input.")
@_state_options
@_batch_option
@_weight_options
@_token_options
@_backward_options
@click.option("--steps", default=None, metavar="RANGE",
              help="Explain these steps in full after the summary, e.g. 3-5 or 1,4-6, or all "
                   "[default: every step of a run of up to 20; of a longer one, the first, the last and "
                   "those where something happens, each with why]. CSV and JSON always hold every step.")
@_check_option
@_csv_layout_option
@_output_options(TRACE_FORMATS)
def run(xs, h, c, hidden_size, weights, gradients, steps, checks, csv_layout, fmt, output, precision, expand,
        brief):
    """Trace a sequence, carrying h and c from each step to the next.

    \b
    Three steps written inline; a summary table, then each step:
        lstmtrace run --xs '1,0;0,1;1,1' --hidden-size 2
    A trained PyTorch model's first layer over a file of inputs, to a spreadsheet:
        lstmtrace run --weights model.pt --prefix encoder.lstm --xs inputs.csv \\
            -o trace.csv
    A Keras model's first LSTM layer, explaining steps 3 to 5 only:
        lstmtrace run --weights model.weights.h5 --xs inputs.npy --steps 3-5
    Every layer of a (bidirectional) model, from token ids through its embedding:
        lstmtrace run --weights model.pt --prefix lstm --layer all \\
            --tokens 3,1,4 --embedding embedding.weight -o stack.csv
    Check c_1 and c_2 worked out by hand, and h at step 3 alone:
        lstmtrace run --xs '1;1;1' --check 'c=0.5568;1.1444' --check h@3=0.7888
    """
    fmt = _format_for(fmt, output, TRACE_FORMATS)
    if xs is None:
        raise click.UsageError("give the sequence: --xs FILE|ROWS, or --tokens IDS with --embedding KEY")
    _check_output(output, [("--xs", xs), *_weights_inputs(weights=weights.weights)])
    sequence = _sequence(xs)
    trace, note = _run_cells(weights, sequence, h, c, hidden_size, gradients)
    if checks:
        if hasattr(trace, "traces"):
            raise click.BadParameter(f"checks one cell, and {len(trace.traces)} are traced: pick one with "
                                     "--layer K --direction forward|reverse", param_hint="'--check'")
        return _emit_check(trace, checks, fmt, output, expand, steps, csv_layout, brief)
    title = " ".join(filter(None, [weights.describe(), note, _describe_loss(gradients)]))
    _emit(trace, fmt, output, precision, expand, title, steps, layout=csv_layout, brief=brief)


def _run_cells(weights, sequence, h, c, hidden_size, gradients=None, bar=True):
    """`run`'s trace of ``sequence``: one cell (a Trace), or several (a Stack: --layer all, or a
    bidirectional layer), and the note on where the cell's variant came from."""
    import lstmtrace
    from lstmtrace.errors import OptionError

    H = _hidden_size(h, c, hidden_size, weights)
    layers = _cells(weights, sequence.shape[1], None, "--xs")
    cells = [cell for layer in layers for cell in layer]
    if len(cells) == 1 and H is not None:  # the size --h, --c or --hidden-size gave, checked against the file's
        layers = _cells(weights, sequence.shape[1], H, "--xs")
        cells = [cell for layer in layers for cell in layer]
    T = sequence.shape[0] * len(cells)
    show_bar = bar and T >= 100 and _stderr_is_terminal()
    if show_bar and _rows(cells, sequence.shape, gradients) > LONG_WRITE_ROWS:
        # one bar for the whole command: tracing (a step a unit), then writing (as many units again); it
        # stays open until the command ends, and _emit moves it on as the output is written
        ctx = click.get_current_context()
        progress = ctx.with_resource(click.progressbar(length=2 * T, label="tracing and writing", file=sys.stderr))
        ctx.meta["lstmtrace.progress"] = (progress, T)
        show_bar = False
    else:
        progress = None
    with (click.progressbar(length=T, label="tracing", file=sys.stderr) if show_bar else
          contextlib.nullcontext(progress) if progress is not None else _no_bar()) as progress:
        if len(cells) == 1:
            (params, direction, _), = cells
            trace = _traced(lstmtrace.run, params, sequence, h, c, progress=progress.update, direction=direction)
            return _with_gradients(trace, gradients), params.variant_note()
        given = [name for name, value in (("--h", h), ("--c", c), ("--hidden-size", hidden_size)) if value is not None]
        if given or gradients is not None:
            raise click.BadParameter(f"is for one cell, and {len(cells)} are traced together (every layer starts "
                                     "from zero h and c; the backward pass is traced cell by cell): trace one "
                                     "with --layer K --direction forward|reverse",
                                     param_hint=f"'{given[0] if given else '--backward'}'")
        try:
            return _traced(lstmtrace.run_stack, layers, sequence, progress=progress.update), ""
        except (OptionError, ValueError) as e:
            raise click.BadParameter(" ".join(str(e).split()), param_hint="'--weights'") from None


LONG_WRITE_ROWS = 1_000_000
"""A trace of more rows than this shows one progress bar over its tracing and its writing (on a terminal)."""


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _rows(cells, shape, gradients) -> int:
    """About how many rows the trace of ``cells`` over a T × E sequence will have (the forward rows, twice
    with a backward pass: enough to tell a long write)."""
    from lstmtrace.cell import layout

    T = shape[0]
    return sum(T * layout(params.input_size, params.hidden_size, cell=params.cell).width for params, _, _ in cells) \
        * (1 if gradients is None else 2)


class _Advancing:
    """A text stream that moves the command's progress bar on by one unit a write, up to ``units``."""

    def __init__(self, stream, progress, units):
        self.stream, self.progress, self.left = stream, progress, units

    def write(self, text):
        self.stream.write(text)
        if self.left > 0:
            self.progress.update(1)
            self.left -= 1


def _cells(weights, E, H, input_hint):
    """The layers of cells a WeightSpec describes (WeightSpec.layers), its errors mapped to options."""
    return _parameters(weights, E, H, input_hint, make=weights.layers)


@cli.command()
@click.option("--show", "show_file", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE", help="Summarise this weights file (same as --weights FILE).")
@click.option("--input-size", type=click.IntRange(min=1), default=None, metavar="E",
              help="E for weights made from a SPEC [default: 1].")
@click.option("--hidden-size", type=click.IntRange(min=1), default=None, metavar="H",
              help="H for weights made from a SPEC [default: E].")
@_weight_options
@click.option("-o", "--output", metavar="PATH.npz", default=None,
              help="Also write the weights to this .npz, in torch.nn.LSTMCell's layout (whole or "
                   "not at all).")
def params(show_file, input_size, hidden_size, weights, output):
    """Make a weights file from a spec, or look inside one, before tracing with it.

    \b
    Look inside a trained model's layer:
        lstmtrace params --show model.pt --prefix encoder.lstm --layer 1
    Make weights for an experiment, and trace with them:
        lstmtrace params --weights random:3 --input-size 3 --hidden-size 5 \\
            --set forget.b=1 -o cell.npz
        lstmtrace step --weights cell.npz --x 1,2,3
    """
    from tabulate import tabulate

    if show_file is not None:
        if weights.weights != "identity":
            raise click.UsageError("give --show FILE or --weights, not both")
        weights = dataclasses.replace(weights, weights=show_file)
    if output is not None:
        _check_output(output, [("--show" if show_file else "--weights", weights.weights)])
        if not output.lower().endswith(".npz"):
            raise click.BadParameter(f"{output!r} must end in .npz", param_hint="'-o' / '--output'")
    p = _parameters(weights, input_size, hidden_size, "--input-size",
                    weights_hint="'--show'" if show_file else "'--weights'")
    described = p.describe()
    _write(f"LSTM weights · input size E = {p.input_size} · hidden size H = {p.hidden_size}\n"
           f"{' '.join(filter(None, [weights.describe(), p.variant_note()]))}\n\n"
           + tabulate(described, headers="keys", showindex=False, floatfmt=".6g") + "\n\n", "-")
    if output is not None:
        with _writing(output):
            p.save(output)
        click.echo(f"wrote {output}", err=True)
        if p.variant.describe():  # torch.nn.LSTMCell's keys have no room for it
            click.echo(f"Note: {output} holds the weights only, not the variant ({p.variant.describe()}): "
                       "give the same variant options when you trace with it.", err=True)


@cli.command()
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", default=None, metavar="RANGE",
              help="Explain these steps in full after the summary, e.g. 3-5, or all [default: every step "
                   "of up to 20; of more, the steps worth reading, each with why].")
@_output_options(("text", "markdown"))
def show(trace, steps, fmt, output, precision, expand, brief):
    """Explain a saved CSV trace, as `lstmtrace step` and `lstmtrace run` do.

    \b
    Save a trace, open it in a spreadsheet, and read it again later:
        lstmtrace step --x 1,2 --h 0.5,0 -o step.csv
        lstmtrace show step.csv --expand 1
    """
    from lstmtrace.trace import read_trace

    fmt = _format_for(fmt, output, ("text", "markdown"))
    _check_output(output, [("TRACE", trace)])
    try:
        loaded = read_trace(trace)
    except (OSError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="'TRACE'") from None
    _emit(loaded, fmt, output, precision, expand, steps=steps, brief=brief)


@cli.command()
@click.argument("traces", nargs=-1, type=click.Path(exists=True, dir_okay=False), metavar="[A.csv B.csv [C.csv …]]")
@click.option("--x", "x", type=VECTOR, default=None, help="Without files: trace this x_t under both weight choices.")
@click.option("--xs", default=None, metavar="FILE|ROWS",
              help="Without files: trace this sequence under both weight choices (as `run --xs`).")
@_state_options
@_batch_option
@_weight_options
@_token_options
@click.option("--a-weights", default=None, metavar="SPEC|FILE", help="Trace A's --weights [default: --weights].")
@click.option("--b-weights", default=None, metavar="SPEC|FILE", help="Trace B's --weights [default: --weights].")
@click.option("--a-set", multiple=True, metavar="GATE.PARAM=SPEC", help="A --set for trace A only; repeatable.")
@click.option("--b-set", multiple=True, metavar="GATE.PARAM=SPEC", help="A --set for trace B only; repeatable.")
@click.option("--a-variant", default=None, metavar="NAME",
              help="Trace A's --variant (a preset: np, v, nig, …); the other variant options apply to both.")
@click.option("--b-variant", default=None, metavar="NAME",
              help="Trace B's --variant, e.g. --a-variant np --b-variant cifg.")
@click.option("--atol", type=NUMBER, default=0.0, show_default=True,
              help="Absolute tolerance: values differ when |a − b| > atol + rtol·max(|a|, |b|).")
@click.option("--rtol", type=NUMBER, default=0.0, show_default=True,
              help="Relative tolerance (with the defaults, only identical numbers are equal).")
@click.option("--units", is_flag=True, help="Also list every differing unit with both values.")
@_output_options(DIFF_FORMATS, expand=False)
def diff(traces, x, xs, h, c, hidden_size, weights, a_weights, b_weights, a_set, b_set, a_variant, b_variant,
         atol, rtol, units, fmt, output, precision, variant_options):
    """Compare two traces: what caused the difference, what it reaches, by how much.

    With three or more trace files, put them side by side: one column per trace
    for every unit that differs in any of them.  Exit status as diff(1): 0 when
    they agree within the tolerance, 1 when they differ, 2 on trouble (a file that
    is not a trace, traces of different sizes).

    \b
    Two saved traces:
        lstmtrace diff zeros.csv identity.csv
    A teacher's three experiments, side by side:
        lstmtrace diff traces/notebook_1_zeros.csv traces/notebook_2_identity.csv \\
            traces/notebook_3_u_zeros.csv
    The notebook's experiment in one command (trace A, then B):
        lstmtrace diff --x 10,0,0 --h 0,0,10 --c 1,1,1 --weights zeros \\
            --set forget.W=identity --a-set forget.U=identity --b-set forget.U=zeros
    Every differing unit, for a spreadsheet:
        lstmtrace diff a.csv b.csv --units -o diff.csv
    The seed question's step without and with coupled gates (Greff's CIFG):
        lstmtrace diff --x -0.1,0.3,0.1,-0.25,0.1 --h 0,0.5,0.1,0.2,0.6 --a-variant np --b-variant cifg
    """
    import lstmtrace
    from lstmtrace.compare import TraceMismatch
    from lstmtrace.compare import render as render_diff
    from lstmtrace.trace import read_trace

    fmt = _format_for(fmt, output, DIFF_FORMATS)
    _check_output(output, [*zip("AB", traces), ("--xs", xs), *_weights_inputs(
        weights=weights.weights, a_weights=a_weights, b_weights=b_weights)])
    if atol < 0 or rtol < 0:
        raise click.BadParameter("must be ≥ 0", param_hint="'--atol' / '--rtol'")
    if traces:
        inline = [name for name, v in (("--x", x), ("--xs", xs), ("--a-set", a_set), ("--b-set", b_set),
                                       ("--a-weights", a_weights), ("--b-weights", b_weights),
                                       ("--a-variant", a_variant), ("--b-variant", b_variant))
                  if v is not None and len(v)]
        if len(traces) < 2:
            raise click.UsageError(f"give two traces to compare (or more to put side by side), not {len(traces)}")
        if inline:
            raise click.UsageError(f"{inline[0]} is for comparing without files; give files or options, "
                                   "not both")
        if len(traces) > 2:
            return _side_by_side(traces, atol, rtol, units, fmt, output, precision)
        loaded = []
        for name, path in zip("AB", traces):
            try:
                loaded.append(read_trace(path, unknown="skip"))
            except (OSError, ValueError) as e:
                raise click.BadParameter(" ".join(str(e).split()), param_hint=f"'{name}'") from None
        a, b = loaded
    else:
        if (x is None) == (xs is None):
            raise click.UsageError("give two trace files, or --x (or --xs) to trace under two weight choices")
        sides = []
        for name, side_weights, side_sets, side_variant in (("a", a_weights, a_set, a_variant),
                                                              ("b", b_weights, b_set, b_variant)):
            variant = weights.variant
            if side_variant is not None:  # this side's preset, with the shared variant options on top
                variant = _variant({**variant_options, "variant_name": side_variant}, f"--{name}-variant")
            sides.append(_trace_inline(x, xs, h, c, hidden_size, dataclasses.replace(
                weights, weights=side_weights or weights.weights, sets=weights.sets + side_sets, variant=variant)))
        a, b = sides
    try:
        summary = lstmtrace.diff(a, b, atol=atol, rtol=rtol)
    except TraceMismatch as e:
        raise click.ClickException(f"cannot compare: {e}") from None
    per_unit = lstmtrace.diff(a, b, atol=atol, rtol=rtol, units=True) if units else None
    if fmt == "csv":
        _warn_if_too_long(len(per_unit if units else summary) + 1, output)
    _write(render_diff(summary, per_unit, fmt, precision), output)
    click.get_current_context().exit(0 if summary.empty else 1)


def _side_by_side(paths, atol, rtol, units, fmt, output, precision):
    """`diff` of three or more trace files: one column per trace, named after its file."""
    import pathlib

    from lstmtrace.compare import TraceMismatch, render, side_by_side
    from lstmtrace.trace import read_trace

    if units:
        raise click.UsageError("--units is for two traces; side by side, every differing unit is listed already")
    stems = [pathlib.Path(p).stem for p in paths]
    names = stems if len(set(stems)) == len(stems) else [f"{chr(ord('A') + k) if k < 26 else k + 1}:{stem}"
                                                         for k, stem in enumerate(stems)]
    loaded = []
    for path in paths:
        try:
            loaded.append(read_trace(path, unknown="skip"))
        except (OSError, ValueError) as e:
            raise click.BadParameter(" ".join(str(e).split()), param_hint=f"'{path}'") from None
    try:
        table = side_by_side(loaded, names=names, atol=atol, rtol=rtol)
    except TraceMismatch as e:
        raise click.ClickException(f"cannot compare: {e}") from None
    if fmt == "csv":
        _warn_if_too_long(len(table) + 1, output)
    _write(render(table, None, fmt, precision), output)
    click.get_current_context().exit(0 if table.empty else 1)


def _trace_inline(x, xs, h, c, hidden_size, weights):
    """One side of an inline diff: the same inputs as `step --x` or `run --xs`, these weights."""
    import lstmtrace

    if xs is not None:
        return _run_cells(weights, _sequence(xs), h, c, hidden_size, bar=False)[0]
    params = _parameters(weights, len(x), _hidden_size(h, c, hidden_size, weights), "--x")
    return _traced(lstmtrace.step, params, x, h, c)


class _Stdout:
    """Standard output as a text stream for a streamed write, failing as :func:`_write` fails."""

    def write(self, content):
        _write(content, None)


def _write(content, output):
    """Text to stdout, or to a file that appears whole or not at all."""
    from lstmtrace.atomic import atomic_open

    if output in (None, "-"):
        try:
            click.echo(content, nl=False)
        except BrokenPipeError:  # the reader left (`| head`): the group ends quietly
            raise
        except OSError as e:  # `> /dev/full`, say
            raise click.ClickException(f"cannot write to standard output: {e.strerror or e}") from None
    else:
        with _writing(output), atomic_open(output, "w", encoding="utf-8", newline="") as f:
            f.write(content)


def _picture_options(f):
    """What to draw from: a saved trace, or the inputs and weights of `step` / `run`."""
    f = click.option("--xs", default=None, metavar="FILE|ROWS",
                     help="A sequence to trace and draw, as `run --xs`.")(f)
    f = click.option("--x", "x", type=VECTOR, default=None,
                     help="An input to trace and draw, as `step --x` [default: the worked example].")(f)
    f = click.argument("trace_file", required=False, type=click.Path(exists=True, dir_okay=False),
                       metavar="[TRACE]")(f)
    return f


def _picture_output(f):
    f = click.option("--format", "fmt", type=click.Choice(["svg", "png"]), default=None,
                     help="svg or png [default: from the -o suffix, else svg].")(f)
    f = click.option("-o", "--output", metavar="PATH", default="-",
                     help="Write the picture here ('-': SVG to standard output). Whole or not at all.")(f)
    return f


def _trace_to_picture(trace_file, x, xs, h, c, hidden_size, weights, output):
    """The trace a picture is drawn from: a saved file, or traced now from --x / --xs."""
    from lstmtrace.trace import read_trace

    _check_output(output, [("TRACE", trace_file), ("--xs", xs), *_weights_inputs(weights=weights.weights)])
    if trace_file is not None:
        if x is not None or xs is not None:
            raise click.UsageError("give a saved TRACE or --x/--xs, not both")
        try:
            loaded = read_trace(trace_file)
        except (OSError, ValueError) as e:
            raise click.BadParameter(" ".join(str(e).split()), param_hint="'TRACE'") from None
        if not hasattr(loaded, "traces"):
            given = next((f"--{name}" for name in ("layer", "direction") if getattr(weights, name) is not None), None)
            if given:
                raise click.BadParameter("picks a cell of a saved stack (a trace with layer and direction columns), "
                                         "and TRACE holds one cell", param_hint=f"'{given}'")
            return loaded
        return _one_cell(loaded, weights.layer, weights.direction, "TRACE")
    if x is None and xs is None:
        x, h, c = _worked_example()
    traced = _trace_inline(x, xs, h, c, hidden_size, weights)
    return _one_cell(traced, weights.layer, weights.direction, weights.weights) if hasattr(traced, "traces") else traced


def _one_cell(stack, layer, direction, where):
    """The cell of a Stack that --layer and --direction pick, for a picture of one cell."""
    if layer is None or layer == "all":
        if len(stack.layers) > 1 or layer == "all":
            raise click.BadParameter(f"a picture shows one cell, and {where} has layers "
                                     f"{', '.join(map(str, stack.layers))}: give --layer K", param_hint="'--layer'")
        layer = stack.layers[0]
    if layer not in stack.layers:
        raise click.BadParameter(f"{where} has no layer {layer}; its layers are {', '.join(map(str, stack.layers))}",
                                 param_hint="'--layer'")
    runs = stack.directions(layer)
    if direction in (None, "both"):
        if len(runs) > 1:
            raise click.BadParameter(f"a picture shows one cell, and layer {layer} of {where} runs both ways: give "
                                     "--direction forward or reverse", param_hint="'--direction'")
        direction = runs[0]
    if direction not in runs:
        raise click.BadParameter(f"layer {layer} of {where} runs {runs[0]} only", param_hint="'--direction'")
    return stack.cell(layer, direction)


def _require_pictures(fmt):
    """Pictures need matplotlib: said before any tracing, naming the option that asked for one."""
    needs = missing("matplotlib", "A picture")
    if needs:
        raise click.BadParameter(needs, param_hint="'--format'" if fmt else "'-o' / '--output'")


def _save_picture(make_figure, output, fmt):
    from lstmtrace import draw as pictures
    from lstmtrace.errors import OptionError

    fmt = fmt or ("png" if output.lower().endswith(".png") else "svg")
    if fmt == "png" and output == "-":
        raise click.BadParameter("PNG is binary: give -o FILE.png", param_hint="'--format'")
    try:
        figure = make_figure()
    except ImportError as e:
        raise click.ClickException(str(e)) from None
    except OptionError as e:  # a --step or --unit the trace does not have
        raise click.BadParameter(str(e), param_hint=f"'--{e.option}'") from None
    if output == "-":
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "picture.svg")
            pictures.save_figure(figure, path, "svg")
            with open(path, encoding="utf-8") as f:
                _write(f.read(), "-")
    else:
        with _writing(output):
            pictures.save_figure(figure, output, fmt)


@cli.command()
@_picture_options
@_state_options
@_batch_option
@_weight_options
@_token_options
@click.option("--step", "step_number", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which step of a sequence to draw.")
@click.option("--unit", type=click.IntRange(min=0), default=None,
              help="Draw one unit's scalars [default: the first three units of each vector].")
@click.option("--precision", type=click.IntRange(1, 17), default=3, show_default=True, metavar="N",
              help="Significant digits of the numbers on the wires.")
@_picture_output
def draw(trace_file, x, xs, h, c, hidden_size, weights, step_number, unit, precision, fmt, output):
    """Draw the LSTM cell with the trace's numbers on its wires (SVG or PNG; needs matplotlib).

    \b
    The worked example's cell, as a picture:
        lstmtrace draw -o cell.svg
    One unit's scalars, for a wide layer:
        lstmtrace draw --weights model.pt --xs inputs.csv --step 5 --unit 12 -o cell.png
    A saved trace:
        lstmtrace draw trace.csv -o cell.png
    """
    _require_pictures(fmt)
    trace = _trace_to_picture(trace_file, x, xs, h, c, hidden_size, weights, output)

    def figure():
        from lstmtrace.draw import draw_cell

        return draw_cell(trace, step=step_number, unit=unit, precision=precision)

    _save_picture(figure, output, fmt)


@cli.command()
@_picture_options
@_state_options
@_batch_option
@_weight_options
@_token_options
@_picture_output
def plot(trace_file, x, xs, h, c, hidden_size, weights, fmt, output):
    """Heatmaps of each gate, c and h over steps and units (SVG or PNG; needs matplotlib).

    \b
    A sequence through a trained layer:
        lstmtrace plot --weights model.pt --xs inputs.csv -o gates.png
    A saved sequence trace:
        lstmtrace plot trace.csv -o gates.svg
    """
    _require_pictures(fmt)
    trace = _trace_to_picture(trace_file, x, xs, h, c, hidden_size, weights, output)

    def figure():
        from lstmtrace.draw import plot_heatmaps

        return plot_heatmaps(trace)

    _save_picture(figure, output, fmt)


# -- the pieces the commands share ----------------------------------------------------------

class _no_bar:
    """Stands in for a progress bar where none is shown (stderr is not a terminal, or T is small)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _worked_example():
    """x, h_prev and c_prev of the seed question's step, as arrays."""
    import numpy as np

    from lstmtrace.examples import SEED_QUESTION

    return tuple(np.array(SEED_QUESTION[k]) for k in ("x", "h_prev", "c_prev"))


def _sequence(xs):
    """The T×E sequence that --xs names: a file, or rows written inline."""
    from lstmtrace import spec

    from lstmtrace.errors import OptionError

    meta = click.get_current_context().meta
    if xs == _FROM_TOKENS:
        return meta["lstmtrace.sequence"]
    batch_index = meta.get("lstmtrace.batch_index")
    if xs == "-":
        return _standard_input_sequence(batch_index)
    try:
        if os.path.isfile(xs):
            return spec.read_sequence(xs, batch_index)
        if batch_index is not None:
            raise OptionError("is for arrays of shape B×T×E (.npy, .npz); --xs gives inline rows", "batch_index")
        return spec.parse_sequence(xs)
    except OptionError as e:  # a batch without --batch-index is the --xs's to fix
        hint = "'--batch-index'" if batch_index is not None else "'--xs'"
        raise click.BadParameter(" ".join(str(e).split()), param_hint=hint) from None
    except (OSError, ValueError) as e:
        message = str(e)
        if not os.path.exists(xs) and not _looks_inline(xs):
            message = f"no file {xs!r}, nor rows of numbers like '1,2;3,4'"
        raise click.BadParameter(" ".join(message.split()), param_hint="'--xs'") from None


def _standard_input_sequence(batch_index=None):
    """The sequence piped in on standard input (--xs -): CSV or whitespace text, or an .npy array."""
    import io

    from lstmtrace import spec
    from lstmtrace.damage import not_utf8
    from lstmtrace.errors import OptionError

    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin  # bytes: an .npy, or text
    data = stdin.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data.startswith(b"\x93NUMPY"):  # np.save's magic: an array piped in
        stream = io.BytesIO(data)
        stream.name = "standard input"
    else:
        try:
            stream = io.StringIO(data.decode("utf-8-sig"))
        except UnicodeDecodeError as e:
            raise click.BadParameter(f"standard input is not text of numbers: {not_utf8(data, e)}",
                                     param_hint="'--xs'") from None
        stream.name = "standard input"
    try:
        return spec.read_sequence(stream, batch_index)
    except OptionError as e:
        hint = "'--batch-index'" if batch_index is not None else "'--xs'"
        raise click.BadParameter(" ".join(str(e).split()), param_hint=hint) from None
    except (OSError, ValueError) as e:
        raise click.BadParameter(" ".join(str(e).split()), param_hint="'--xs'") from None


def _looks_inline(text):
    """Rows written out ('1,2;3,4', 'nan') rather than a file name."""
    try:
        float(text)
        return True
    except ValueError:
        return "," in text or ";" in text


def _traced(trace_function, params, *args, **kwargs):
    """Run lstmtrace.step or lstmtrace.run; an overflow becomes a one-line error naming where."""
    import lstmtrace

    try:
        return trace_function(params, *args, **kwargs)
    except lstmtrace.NonFiniteError as e:
        raise click.ClickException(str(e)) from None


def _with_gradients(trace, gradients):
    """The trace with its backward pass, when --backward asked for one."""
    import lstmtrace
    from lstmtrace.errors import OptionError

    if gradients is None:
        return trace
    try:
        return lstmtrace.backward(trace, **gradients)
    except lstmtrace.NonFiniteError as e:
        raise click.ClickException(str(e)) from None
    except OptionError as e:  # a target or upstream gradient of the wrong length, say
        raise click.BadParameter(str(e), param_hint=f"'--{e.option.replace('_', '-')}'") from None


def _describe_loss(gradients):
    if gradients is None:
        return None
    if gradients["dh"] is not None:
        return "Backward pass from a given dL/dh_T" + (" and dL/dc_T." if gradients["dc"] is not None else ".")
    over = "h_T" if gradients["loss_on"] == "last" else "every step's h_t"
    loss = {"sum": f"L = Σ of {over}", "mse": f"L = ½‖h − target‖² over {over}"}[gradients["loss"]]
    return f"Backward pass of {loss}."


def _hidden_size(h, c, hidden_size, weights=None):
    """H from --h, --c or --hidden-size (None to leave it to the weights), checking they agree.

    With a projection (``weights.variant.proj_size`` = P), h has P units: --h must give P values."""
    proj_size = getattr(getattr(weights, "variant", None), "proj_size", None)
    if proj_size is not None and h is not None:
        if len(h) != proj_size:
            raise click.BadParameter(f"gives {len(h)} values, but h has P = {proj_size} units with --proj-size "
                                     f"{proj_size}", param_hint="'--h'")
        h = None  # says nothing of H
    sizes = [(name, len(v)) for name, v in (("--h", h), ("--c", c)) if v is not None]
    if hidden_size is not None:
        sizes.append(("--hidden-size", hidden_size))
    for name, n in sizes[1:]:
        if n != sizes[0][1]:
            raise click.BadParameter(f"gives hidden size {n} but {sizes[0][0]} gives {sizes[0][1]}",
                                     param_hint=f"'{name}'")
    return sizes[0][1] if sizes else None


def _parameters(weights, E, H, input_hint, weights_hint="'--weights'", make=None):
    """The Parameters a WeightSpec describes, for input size E and hidden size H (None: any).

    ``input_hint`` names the option that gave E, for the error when a file disagrees; ``make``
    is the WeightSpec's method that makes them (``parameters``, or ``layers`` for run's cells).
    """
    from lstmtrace.errors import OptionError

    try:
        return (make or weights.parameters)(E, H)
    except OptionError as e:
        hints = {"weights": weights_hint, "input_size": f"'{input_hint}'", "layout": "'--weights-layout'",
                 "sets": "'--set'", "forget_bias": "'--forget-bias'", "direction": "'--direction'"}
        option = e.option
        typed = click.get_current_context().meta.get("lstmtrace.variant_typed", [])
        if option in _VARIANT_FLAGS and typed and option not in typed:  # the file contradicts what was typed
            option = typed[0]
        hint = hints.get(option) or f"'{_VARIANT_FLAGS.get(option, '--' + option.replace('_', '-'))}'"
        raise click.BadParameter(" ".join(str(e).split()), param_hint=hint) from None
    except ImportError as e:  # a .pt without torch, an .h5 without h5py
        raise click.BadParameter(str(e), param_hint=weights_hint) from None


_AS_PROGRAM = False  # True when running as the `lstmtrace` program, not called in-process by a test


def main(*args, **kwargs):
    """The ``lstmtrace`` program: the command group, with Ctrl-C's exit status 130 kept.

    A library may deliver one Ctrl-C twice (pyarrow reports it, and can raise SIGINT again as
    the interpreter shuts down), which would turn the 130 already promised into death by
    SIGINT: once interrupted, the program ignores SIGINT and leaves at once.  Tests call
    ``cli`` in-process, where signal handlers must stay as they are.
    """
    global _AS_PROGRAM
    _AS_PROGRAM = True
    try:
        cli.main(*args, **kwargs)
    except (SystemExit, KeyboardInterrupt) as e:
        if isinstance(e, SystemExit) and e.code != _Interrupted.exit_code:
            raise
        # Interrupted, with every temporary file already removed: leave now, before pyarrow's signal
        # handling, which re-raises SIGINT as the interpreter shuts down, can kill the process by it.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(_Interrupted.exit_code)
