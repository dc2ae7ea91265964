# make run   set up .venv from nothing (first time compiles llama.cpp) and open the chat
# make test  set up .venv with the test extras and run lint + the whole test suite
VENV := .venv
BIN  := $(VENV)/bin

.PHONY: run test lint bench fuzz clean

$(VENV)/.setup-run: pyproject.toml scripts/setup.sh
	scripts/setup.sh

$(VENV)/.setup-test: pyproject.toml scripts/setup.sh
	scripts/setup.sh test

run: $(VENV)/.setup-run
	$(BIN)/rp-chat $(ARGS)

test: $(VENV)/.setup-test
	$(BIN)/ruff check rp_context tui tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.setup-test
	$(BIN)/ruff check rp_context tui tests bench
	$(BIN)/lint-imports

# 10,000 mutated inputs across every format (7 fuzz tests x 1430); counts in fuzz-report.txt
fuzz: $(VENV)/.setup-test
	RP_FUZZ_EXAMPLES=$${RP_FUZZ_EXAMPLES:-1430} RP_FUZZ_REPORT=$${RP_FUZZ_REPORT:-fuzz-report.txt} \
		$(BIN)/python -m pytest tests/fuzz/test_fuzz_formats.py -q -s -p no:cacheprovider --timeout 0

bench: $(VENV)/.setup-test
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
