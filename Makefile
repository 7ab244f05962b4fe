# One entry point, used the same way locally and in CI.
.PHONY: setup setup-dev ask lint typecheck test test-only dist bench clean

setup:            ## the package with the local, server and eval extras
	scripts/setup.sh local,server,eval

setup-dev:        ## everything the tests need: dev tools, the test model, a headless browser
	scripts/setup.sh local,server,eval,dev
	scripts/ensure-chromium.sh
	.venv/bin/moa models pull smollm2-135m-instruct

ask: setup        ## a real MoA answer on the embedded default
	.venv/bin/moa ask "What is 17 * 23? Answer briefly."

lint:
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/ruff check src tests benchmarks

typecheck:
	.venv/bin/mypy

test: setup-dev lint typecheck test-only

test-only:        ## pytest; "no tests collected" (exit code 5) fails, and says so
	.venv/bin/pytest -q --durations=10; rc=$$?; \
	[ $$rc -eq 5 ] && echo "error: pytest collected no tests" >&2; exit $$rc

dist:             ## the sdist and the wheel, in dist/ (installable anywhere: pip install dist/*.whl)
	rm -rf dist
	.venv/bin/python -m build --outdir dist

clean:
	rm -rf .venv build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
