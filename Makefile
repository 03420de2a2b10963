# Thin wrapper for those who have make; ./dev works without it.
.PHONY: demo test setup lint bench
demo:
	./dev demo
test:
	./dev test
setup:
	./dev setup
lint:
	.venv/bin/ruff check .
bench:
	.venv/bin/python -m pytest tests/bench -s -p no:xdist
