# Shortcuts for the README commands and the linters.
.PHONY: run test lint format

run:
	./scripts/start $(ARGS)

test:
	./scripts/test $(ARGS)

lint:
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .

format:
	uv run --frozen ruff format .
	uv run --frozen ruff check --fix .
