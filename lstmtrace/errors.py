"""The errors lstmtrace raises for one setting, so a caller can say which setting was wrong.

>>> try:
...     raise OptionError("must be ≥ 0", option="layer")
... except ValueError as e:
...     (e.option, str(e))
('layer', 'must be ≥ 0')
"""

__all__ = ["OptionError", "one_cell"]


class OptionError(ValueError):
    """A value that one named setting cannot take; ``option`` is the keyword argument's name.

    The command line maps ``option`` to its own flag (``"sets"`` → ``--set``,
    ``"layout"`` → ``--weights-layout``), never the message text.
    """

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option


def one_cell(trace, what: str) -> None:
    """An OptionError naming --layer or --direction when ``trace`` is a Stack of several cells and
    ``what`` (the step as code, the workbook) is one cell's.

    >>> one_cell(object(), "the workbook")      # a one-cell trace passes
    """
    if not hasattr(trace, "traces"):  # not a Stack
        return
    layers = trace.layers
    if len(layers) > 1:
        raise OptionError(f"{what} is one cell's, and this trace has {len(layers)} layers "
                          f"({', '.join(map(str, layers))}): give --layer K (and --direction for a "
                          "bidirectional layer)", "layer")
    raise OptionError(f"{what} is one cell's, and layer {layers[0]} runs both ways: give "
                      "--direction forward or --direction reverse", "direction")
