# make demo: check, simulate and the console on the bundled demo qmail home.
# make test: lint and the suite.
# Both create .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_HOME := .demo

.PHONY: demo test lint bench screenshots clean

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(DEMO_HOME): $(VENV)/.runtime $(wildcard qremote/demo/control/*)
	rm -rf $(DEMO_HOME)
	cp -r qremote/demo $(DEMO_HOME)
	chmod 640 $(DEMO_HOME)/control/routes
	touch $(DEMO_HOME)

demo: $(DEMO_HOME)
	@echo '$$ qremote check'
	@$(VENV)/bin/qremote --qmail-home $(DEMO_HOME) check
	@echo
	@echo '$$ qremote simulate --no-dns someone@domaine1.com a@domaine2.com b@relay.test'
	@$(VENV)/bin/qremote --qmail-home $(DEMO_HOME) simulate --no-dns \
		someone@domaine1.com a@domaine2.com b@relay.test
	@echo '$$ qremote simulate --no-dns --json client@else.net a@relay.test'
	@$(VENV)/bin/qremote --qmail-home $(DEMO_HOME) simulate --no-dns --json \
		client@else.net a@relay.test
	@if [ -t 0 ] && [ -t 1 ]; then $(VENV)/bin/qconsole --demo; \
	else echo '(run `.venv/bin/qconsole --demo` in a terminal for the console)'; fi

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.test
	$(PY) bench/routemap_scale.py
	$(PY) bench/delivery_cpu.py
	$(PY) bench/log_scale.py
	$(PY) bench/big_message.py
	$(PY) bench/warm_path.py   # root: a network namespace (see README, Performance)

screenshots: $(VENV)/.runtime
	$(PY) -m qconsole.screenshots screenshots

clean:
	rm -rf $(VENV) $(DEMO_HOME)
