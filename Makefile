# The two commands of README.md. Both do all set-up first (tools/bootstrap.sh).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup demo test lint sanity unit molecule fleet-down

setup:
	tools/bootstrap.sh

demo: setup
	tools/demo.sh

test: setup
	tools/test.sh all

lint: setup
	tools/test.sh lint

sanity: setup
	tools/test.sh sanity

unit: setup
	tools/test.sh pytest

molecule: setup
	tools/test.sh molecule

fleet-down:
	ansible-playbook playbooks/local_fleet.yml -e local_fleet_state=absent
