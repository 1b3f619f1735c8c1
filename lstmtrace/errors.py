"""The errors lstmtrace raises for one setting, so a caller can say which setting was wrong.

>>> try:
...     raise OptionError("must be ≥ 0", option="layer")
... except ValueError as e:
...     (e.option, str(e))
('layer', 'must be ≥ 0')
"""

__all__ = ["OptionError"]


class OptionError(ValueError):
    """A value that one named setting cannot take; ``option`` is the keyword argument's name.

    The command line maps ``option`` to its own flag (``"sets"`` → ``--set``,
    ``"layout"`` → ``--weights-layout``), never the message text.
    """

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option
