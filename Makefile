# Ahoy: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test site-test test-fast lint bench faults screenshots image vm-test arm64-boot-test plug-test mesh-test site-vm-test clean help

help:
	@echo "make run         start the box in development mode on this machine"
	@echo "make test        run the whole test suite (about 15 minutes on 2 cores)"
	@echo "make site-test   only the site tests: several boxes, real nats-servers (2-4 minutes)"
	@echo "make test-fast   core and integration tests only (no browser, no namespaces)"
	@echo "make lint        ruff and mypy"
	@echo "make bench       benchmarks against the baselines (prints a table)"
	@echo "make faults      crash and power-cut loop: nothing acknowledged lost (CLIENTS=20 ROUNDS=10)"
	@echo "make screenshots phone-size screenshots into docs/screenshots/"
	@echo "make image       build the SD-card image (root, slow)"
	@echo "make vm-test     boot the image in a VM with simulated Wi-Fi (root, slow)"
	@echo "make arm64-boot-test  boot the arm64 image under qemu -M raspi3b to /healthz (root, slow)"
	@echo "make plug-test   pull the VM's plug at random moments, again and again (root, slow)"
	@echo "make mesh-test   the Wi-Fi mesh backbone (batman-adv) on simulated radios in a VM (root)"
	@echo "make site-vm-test two boxes, two phones, chat, a call and a roam on simulated radios in a VM (root)"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Cannot create a virtual environment: install python3-venv (apt-get install python3-venv)."; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# HOST=<this machine's LAN address> serves there instead of loopback (see README).
HOST ?=
run: $(STAMP)
	$(PY) -m appliance serve --dev --data-dir var $(if $(HOST),--host $(HOST))

test: $(STAMP)
	$(PY) -m pytest -q

# Several boxes as one site (docs/site.md): real nats-servers and services, 3 to 7 minutes.
site-test: $(STAMP)
	$(PY) -m pytest -q tests/site

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not browser and not netns and not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check appliance provisioning tests bench
	$(VENV)/bin/mypy appliance provisioning

bench: $(STAMP)
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench

# Power cuts need root (a loop device); without it that half is skipped and says why.
CLIENTS ?= 20
ROUNDS ?= 10
faults: $(STAMP)
	$(PY) -m bench.faults --clients $(CLIENTS) --rounds $(ROUNDS)

screenshots: $(STAMP)
	$(PY) tests/browser/screenshots.py

image:
	$(MAKE) -C image image

vm-test:
	$(MAKE) -C image vm-test

arm64-boot-test:
	$(MAKE) -C image arm64-boot-test

plug-test:
	$(MAKE) -C image plug-test

mesh-test:
	$(MAKE) -C image mesh-test

# Runs the VM's programs from this machine and this repo's venv (image/sitevm/run.py).
site-vm-test: $(STAMP)
	$(MAKE) -C image site-vm-test

clean:
	rm -rf var .pytest_cache .hypothesis
