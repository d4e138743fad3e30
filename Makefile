# DailyQ: `make run` starts the whole service locally, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint format venv outbox clean messages bench audit

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# Every process reads .env (mailservice/envfile.py; the real environment and
# `make run WEB_PORT=8001` win over it). honcho starts through the same loader,
# so the Procfile sees those values too, and does not read the file itself.
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_starter_questions
	@echo ""
	@echo "DailyQ is starting (Ctrl-C stops everything):"
	@$(BIN)/python manage.py site_urls
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mailservice.envfile honcho --env /dev/null -f Procfile start

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

# lint-imports checks the layers in .importlinter (docs/architecture.md, "Layers");
# radon fails on any function of the apps rated D or worse (cyclomatic complexity over 20).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo
	@out="$$($(BIN)/radon cc -n D mailer/ subscriptions/ mailservice/)"; \
	if [ -n "$$out" ]; then echo "$$out"; echo "radon: functions rated D or worse (split them)"; exit 1; fi

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Known vulnerabilities in the pinned dependencies (README, "Security"). Needs a
# vulnerability database: PyPI's JSON API, or OSV with PIP_AUDIT_ARGS="-s osv".
# --strict fails when a package could not be checked instead of passing it over.
audit: venv
	$(BIN)/pip-audit --strict -r requirements-dev.txt $(PIP_AUDIT_ARGS)

outbox: venv
	$(BIN)/python manage.py outbox

clean:
	rm -rf $(VENV) var

# Translations: refresh the Korean catalog after changing strings, translate
# the new entries in locale/ko/LC_MESSAGES/django.po, then compile. The .mo is
# committed, so a machine without gettext still serves Korean.
messages: venv
	$(BIN)/python manage.py makemessages -l ko -d django --ignore=.venv --ignore=var --ignore=tests --no-obsolete
	$(BIN)/python manage.py compilemessages -l ko --ignore=.venv

# The daily-send benchmark (bench/README.md): needs PostgreSQL and Redis, as
# `make test` does; takes about 20 minutes with the 100,000 run.
bench: venv
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python -m bench.run --subscriptions 10000 $(BENCH_ARGS)
	$(BIN)/python -m bench.run --subscriptions 100000 --phases pipeline,ceiling $(BENCH_ARGS)
