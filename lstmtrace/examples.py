"""The worked examples lstmtrace is built around.

``SEED_QUESTION`` is the step a learner wrote by hand, asking why the forget
gate with identity weights is 0.475 and not "0 or 1".  ``SEED_NOTEBOOK`` is the
input of a teacher's notebook that compares weight choices for the forget gate.

>>> SEED_QUESTION["x"]
[-0.1, 0.3, 0.1, -0.25, 0.1]
"""

__all__ = ["SEED_QUESTION", "SEED_NOTEBOOK"]

SEED_QUESTION = {
    "x": [-0.1, 0.3, 0.1, -0.25, 0.1],
    "h_prev": [0.0, 0.5, 0.1, 0.2, 0.6],
    "c_prev": [0.0, 0.0, 0.0, 0.0, 0.0],
}

SEED_NOTEBOOK = {
    "x": [10.0, 0.0, 0.0],
    "h_prev": [0.0, 0.0, 10.0],
    "c_prev": [1.0, 1.0, 1.0],
}
