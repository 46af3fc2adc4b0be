# Seller-Creator IM. The two commands: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PYTHONPATH := $(CURDIR):$(CURDIR)/contracts
LOCAL := deploy/local
PY = $$(bash -c 'source $(LOCAL)/common.sh && echo $$PY')
# Tools connect to the instance's Kafka as im-ops (deploy/local/kafka-security.sh made its credentials).
AS_OPS = KAFKA_CLIENT_PROPERTIES="$${SCIM_DATA:-$(CURDIR)/.data}/$${SCIM_INSTANCE:-dev}/kafka/im-ops.properties"

.PHONY: help install infra run stop status token test test-unit chaos lag imctl bench docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install:  ## install what is missing (Python env, Kafka and database jars) into the user cache
	@bash $(LOCAL)/bootstrap.sh

infra: install  ## start Kafka (KRaft) and the MongoDB-wire database on loopback and create the topics
	@bash $(LOCAL)/infra.sh start
	@$(AS_OPS) $(PY) -m services.common.topics --bootstrap-servers 127.0.0.1:$${KAFKA_PORT:-9092}

run: infra  ## provision everything and run the five services under supervision
	@bash $(LOCAL)/services.sh start

stop:  ## stop the services and the local infrastructure
	@bash $(LOCAL)/services.sh stop
	@bash $(LOCAL)/infra.sh stop

token: install  ## print a token for the dev instance's HTTP reads: make token ROLE=seller SUB=s1 [TTL=3600]
	@[ -n "$(ROLE)" ] && [ -n "$(SUB)" ] || { echo "usage: make token ROLE=seller|creator|ops SUB=<id> [TTL=<seconds>]" >&2; exit 2; }
	@$(PY) -m services.common.tokens mint "$${SCIM_DATA:-$(CURDIR)/.data}/dev/auth" --role "$(ROLE)" --sub "$(SUB)" --ttl "$(or $(TTL),3600)"

status:  ## show what is running and where
	@bash $(LOCAL)/infra.sh status
	@bash $(LOCAL)/services.sh status

test: install  ## provision test infrastructure, run the whole suite, stop what it started
	@bash $(LOCAL)/run-tests.sh

test-unit: install  ## only the tests that need no infrastructure
	@$(PY) -m pytest -q tests/contracts tests/unit

chaos: install  ## the long fault run: thousands of sends per fault, every fault, checked (CHAOS_ARGS="--help")
	@$(PY) -m tests.chaos.runner $(CHAOS_ARGS)

lag: install  ## consumer lag of every group of the local suite (committed offset against log end)
	@$(AS_OPS) $(PY) -m services.common.lag --bootstrap-servers 127.0.0.1:$${KAFKA_PORT:-9092} $(LAG_ARGS)

imctl: install  ## the operator's command line against the local suite (ARGS="send s1 c1 'hello' --wait"; ARGS=--help)
	@KAFKA_BOOTSTRAP_SERVERS=$${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$${KAFKA_PORT:-9092}} \
		MONGODB_URI=$${MONGODB_URI:-mongodb://127.0.0.1:$${MONGO_PORT:-27017}/} IMCTL_AUTH_DIR=$${IMCTL_AUTH_DIR:-$${SCIM_DATA:-$(CURDIR)/.data}/$${SCIM_INSTANCE:-dev}/auth} \
		$(AS_OPS) $(PY) -m imctl $(ARGS)

bench: install  ## measure the suite `make run` started against a raw Kafka relay (BENCH_ARGS="--help"); see bench/README.md
	@missing=$$($(PY) -m bench.requirements); [ -z "$$missing" ] || $(PY) -m pip install -q $$missing
	@$(AS_OPS) $(PY) -m bench $(BENCH_ARGS)

docs: install  ## regenerate contracts/schemas and docs/asyncapi from the code
	@$(PY) -m im_contracts.schema contracts/schemas
	@$(PY) -m services.common.asyncapi docs/asyncapi

clean:  ## stop everything and wipe local data (.data/)
	-@bash $(LOCAL)/services.sh stop
	@bash $(LOCAL)/infra.sh clean
	@SCIM_INSTANCE=test bash $(LOCAL)/infra.sh clean
	-@SCIM_INSTANCE=chaos bash $(LOCAL)/services.sh stop
	@SCIM_INSTANCE=chaos bash $(LOCAL)/infra.sh clean
