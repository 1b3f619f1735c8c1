# lstmtrace: the everyday commands. `make help` lists them.

.PHONY: help test lint traces fixtures check bench fuzz

help:           ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test:           ## run every test (unit, property, CLI, golden traces, doctests)
	python -m pytest

fuzz:           ## the long fuzz: damaged and made-up files, and random command lines, through the CLI (minutes)
	python -m pytest -m fuzz_long -p no:cacheprovider tests/test_fuzz_files.py
	LSTMTRACE_FUZZ_EXAMPLES=1000 python -m pytest -p no:cacheprovider tests/test_fuzz_cli.py

lint:           ## ruff: pyflakes, bugbear and simplification rules, and no noqa that hides nothing (CI runs it)
	ruff check --target-version py39 --select F,E9,B,SIM,RUF100 lstmtrace tests benchmarks traces

traces:         ## rewrite the golden traces in traces/ from the current code
	python traces/regenerate.py

fixtures:       ## rewrite the PyTorch, Keras and ONNX parity fixtures (needs torch, keras, onnx, onnxruntime)
	python tests/fixtures/make_torch_fixtures.py
	python tests/fixtures/make_grad_fixtures.py
	python tests/fixtures/make_model_fixtures.py
	KERAS_BACKEND=torch python tests/fixtures/make_keras_fixtures.py
	KERAS_BACKEND=torch python tests/fixtures/make_keras_model_fixtures.py
	python tests/fixtures/make_onnx_fixtures.py

check:          ## what CI runs: a fresh virtual environment, the README's test command, live PyTorch parity
	bash .ci/run

bench:          ## the benchmark: ratios against baselines run side by side (takes a few minutes)
	python benchmarks/bench.py
