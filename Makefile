# hybridflow — two commands matter: `make run` (the demo on a local dev
# server and a simulated world) and `make test` (everything CI runs).
# Only Go is needed; the Temporal CLI is built from the Go module proxy.

SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -buildvcs=false

BIN        := $(CURDIR)/bin
DATA       := $(CURDIR)/.data
TEMPORAL   := $(BIN)/temporal
TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_PORT ?= 7233
UI_PORT    ?= 8233

# The production engine on this machine (make cluster): the Temporal server
# and its SQL tool built from the release the compose stack's images carry,
# on a PostgreSQL cluster of its own under .data/cluster (port
# CLUSTER_PG_PORT, run as an unprivileged user), with the server and
# dynamic configuration docker-compose.yml mounts (TEMPORAL_CONFIG).
# `make run CLUSTER=1` runs the demo on it instead of the dev server.
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_SERVER   := $(BIN)/temporal-server
TEMPORAL_SQL_TOOL := $(BIN)/temporal-sql-tool
TEMPORAL_CONFIG   := deploy/temporal
CLUSTER_TOOL := $(BIN)/hybridflow-cluster
CLUSTER_DIR  := $(DATA)/cluster
CLUSTER_PORT ?= 7333
CLUSTER_PG_PORT ?= 5499
CLUSTER ?=
ifeq ($(CLUSTER),1)
ADDRESS    := 127.0.0.1:$(CLUSTER_PORT)
ENGINE     := cluster
else
ADDRESS    := 127.0.0.1:$(TEMPORAL_PORT)
ENGINE     := server
endif
# Custom search attributes; workflows/searchattrs.go is the source of truth
# and a test keeps this list equal to it.
SEARCH_ATTRIBUTES := HybridflowCloud HybridflowDrift HybridflowState HybridflowStep HybridflowTenant
WORKER_CONFIG ?= configs/worker.dev.yaml
INVENTORY  ?= configs/inventory.demo.yaml

HYBRIDFLOW := $(BIN)/hybridflow
WORKER     := $(BIN)/hybridflow-worker
# The simulated PowerShell host's relay: the in-process simulated backend
# (simulate: in a worker config; tests, the benchmark) starts it beside
# hybridflow-worker / rolloutbench instead of re-executing those programs.
SIMHOST    := $(BIN)/hybridflow-simhost
# The stand-alone simulator make run talks to, and the PowerShell stand-in
# its worker config names as each site's shell command.
SIM        := $(BIN)/hybridflow-sim
PWSH       := $(BIN)/hybridflow-pwsh
SIM_WORLD  ?= configs/sim/demo.yaml
SIM_LISTEN ?= 127.0.0.1:7480
SIM_GATEWAY ?= 127.0.0.1:7481
SIM_STATE  := $(DATA)/sim
# The simulated world as make stop left it: make sim serves it instead of
# SIM_WORLD, so that it agrees with the dev server's history
# (.data/temporal.db); make reset removes both.
SIM_SAVED  := $(SIM_STATE)/world.yaml

.PHONY: all build run server sim worker stop reset test vet fmt-check windows-build windows-check clean help bench bench-scale cluster temporal-server postgresql histories

all: build

help:
	@echo "make run    build, start the dev server, the stand-alone simulator and a worker, check health (the demo)"
	@echo "make cluster   Temporal $(TEMPORAL_SERVER_VERSION) on PostgreSQL under .data/cluster at 127.0.0.1:$(CLUSTER_PORT); make run CLUSTER=1 runs the demo on it"
	@echo "make test   vet, format check, PowerShell grammar check, alerting rules (alerts-check), unit + integration tests"
	@echo "make chaos  the long chaos suite: a rollout through worker kills, dev server crashes and faults"
	@echo "make histories   re-record the workflow histories the replay tests replay (workflows/testdata/histories)"
	@echo "make fuzz   every fuzz target for FUZZTIME (default 60s) each, one after another"
	@echo "make stop   stop what make started (PIDs in .data/, the cluster included); the simulated world is saved for the next make run"
	@echo "make reset  stop, then forget the saved simulated world and the dev server's history together (a fresh demo)"
	@echo "make server / make sim / make worker   start only that part; each does nothing if already running"
	@echo "make bench  micro-benchmarks + rollout benchmark (durable vs concurrent vs sequential) into bench/results/"
	@echo "make bench-scale  rollouts of 100, 500, 1,000 and 10,000 fresh tenants: cost against N into bench/results/scale/"

# The Temporal CLI (its dev server), the server and its SQL tool are built
# together from tools/go.mod: one module graph, the CLI release and the
# server release it embeds, at the dependency versions that CLI release
# ships its dev server with. Their common packages (the server's, gRPC,
# the API) compile once, not twice. The CLI is built only when missing,
# the server and SQL tool when missing or of another release; the first
# build takes minutes (docs/testing.md, "The first make test").
TEMPORAL_TOOLS_STAGE := $(BIN)/.temporal-tools
$(TEMPORAL):
	@mkdir -p $(BIN)
	@echo "building the Temporal CLI $(TEMPORAL_CLI_VERSION) and server $(TEMPORAL_SERVER_VERSION) into bin/ from tools/go.mod (first time only, ~6 min)"
	@$(MAKE) --no-print-directory temporal-tools-build TOOLS_PKGS="github.com/temporalio/cli/cmd/temporal $$($(server_current) || echo $(TEMPORAL_SERVER_PKGS))"

TEMPORAL_SERVER_PKGS := go.temporal.io/server/cmd/server go.temporal.io/server/cmd/tools/sql
server_current = [ -x $(TEMPORAL_SERVER) ] && [ -x $(TEMPORAL_SQL_TOOL) ] && \
	[ "$$($(TEMPORAL_SERVER) --version 2>/dev/null)" = "temporal version $(TEMPORAL_SERVER_VERSION:v%=%)" ]

.PHONY: temporal-tools-build
temporal-tools-build:
	rm -rf $(TEMPORAL_TOOLS_STAGE) && mkdir -p $(TEMPORAL_TOOLS_STAGE)
	$(GO) -C tools build -ldflags='-s -w' -o $(TEMPORAL_TOOLS_STAGE)/ $(TOOLS_PKGS)
	@# go build names the binaries after their packages.
	@[ ! -e $(TEMPORAL_TOOLS_STAGE)/temporal ] || mv $(TEMPORAL_TOOLS_STAGE)/temporal $(TEMPORAL)
	@[ ! -e $(TEMPORAL_TOOLS_STAGE)/server ] || mv $(TEMPORAL_TOOLS_STAGE)/server $(TEMPORAL_SERVER)
	@[ ! -e $(TEMPORAL_TOOLS_STAGE)/sql ] || mv $(TEMPORAL_TOOLS_STAGE)/sql $(TEMPORAL_SQL_TOOL)
	@rm -rf $(TEMPORAL_TOOLS_STAGE)

# promtool (Prometheus 3.16.0's rule checker) for alerts-check, built from
# the Go module proxy only when missing. remove_all_sd leaves out the
# service-discovery plugins, which halves the build (6 CPU-minutes, not 12).
PROMTOOL         := $(BIN)/promtool
PROMTOOL_VERSION := v0.316.0
$(PROMTOOL):
	@mkdir -p $(BIN)
	@echo "building promtool $(PROMTOOL_VERSION) into bin/ (first time only, ~4 min)"
	GOBIN=$(BIN) $(GO) install -tags remove_all_sd -ldflags='-s -w' github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

# The alerting rules (deploy/prometheus): promtool check rules and config,
# the rules' unit tests, then internal/deploytest's checks: every alert
# tested firing and not firing, every dashboard query parsing, every series
# exported, and the mutation check (each alert's expression broken in turn
# must fail that alert's tests).
.PHONY: alerts-check
alerts-check: $(PROMTOOL)
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(PROMTOOL) check config deploy/prometheus/prometheus.yml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yml alerts_days_test.yml
	PROMTOOL=$(PROMTOOL) HYBRIDFLOW_REQUIRE_PROMTOOL=1 HYBRIDFLOW_ALERTS_MUTATE=1 $(GO) test -count=1 -v \
		-run 'TestAlertRules|TestAlertMetricsExist|TestComposeMonitoring' ./internal/deploytest

# The server and its SQL tool (built with the CLI, above), rebuilt alone
# when missing or of another release.
temporal-server: $(TEMPORAL)
	@if $(server_current); then :; else \
		echo "building the Temporal server and SQL tool $(TEMPORAL_SERVER_VERSION) into bin/ from tools/go.mod"; \
		$(MAKE) --no-print-directory temporal-tools-build TOOLS_PKGS="$(TEMPORAL_SERVER_PKGS)"; \
	fi

# PostgreSQL's server programs (initdb, postgres), installed with apt-get
# when no /usr/lib/postgresql/*/bin/initdb exists (HYBRIDFLOW_PG_BIN names
# another place). The cluster runs its own server from them; the
# package's own service is not used.
postgresql:
	@if [ -z "$$HYBRIDFLOW_PG_BIN" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" != 0 ]; then echo "PostgreSQL's server is not installed: apt-get install postgresql (as root), or set HYBRIDFLOW_PG_BIN"; exit 1; fi; \
		echo "installing PostgreSQL with apt-get (the cluster's engine)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi

# Starts the cluster unless it is running: PostgreSQL (initdb on first
# use; its data, password and log in .data/cluster), both schemas brought to
# the server's version, the server, the namespace and the search
# attributes. State survives make stop.
cluster: temporal-server postgresql | $(DATA)
	@$(GO) build -o $(CLUSTER_TOOL) ./internal/cluster/cmd/hybridflow-cluster
	@$(CLUSTER_TOOL) start --dir $(CLUSTER_DIR) --port $(CLUSTER_PORT) --pg-port $(CLUSTER_PG_PORT) \
		--config-dir $(TEMPORAL_CONFIG) --bin-dir $(BIN)

build:
	$(GO) build -o $(HYBRIDFLOW) ./starter
	$(GO) build -o $(WORKER) ./worker
	$(GO) build -o $(SIMHOST) ./internal/sim/cmd/hybridflow-simhost
	$(GO) build -o $(SIM) ./internal/sim/cmd/hybridflow-sim
	$(GO) build -o $(PWSH) ./internal/sim/cmd/hybridflow-pwsh

$(DATA):
	@mkdir -p $(DATA)

# Starts the dev server unless something already answers on $(ADDRESS);
# state survives restarts in .data/temporal.db.
server: $(TEMPORAL) | $(DATA)
	@if $(TEMPORAL) operator cluster health --address $(ADDRESS) >/dev/null 2>&1; then \
		echo "Temporal already running at $(ADDRESS)"; \
	else \
		echo "starting Temporal dev server at $(ADDRESS) (state: .data/temporal.db, log: .data/temporal.log)"; \
		nohup $(TEMPORAL) server start-dev --ip 127.0.0.1 --port $(TEMPORAL_PORT) --ui-port $(UI_PORT) \
			--db-filename $(DATA)/temporal.db --log-level warn \
			$(foreach sa,$(SEARCH_ATTRIBUTES),--search-attribute $(sa)=Keyword) \
			>$(DATA)/temporal.log 2>&1 </dev/null & echo $$! >$(DATA)/temporal.pid; \
		for i in $$(seq 1 90); do \
			$(TEMPORAL) operator cluster health --address $(ADDRESS) >/dev/null 2>&1 && break; \
			if ! kill -0 $$(cat $(DATA)/temporal.pid) 2>/dev/null; then echo "dev server exited:"; tail -20 $(DATA)/temporal.log; exit 1; fi; \
			sleep 1; \
		done; \
		$(TEMPORAL) operator cluster health --address $(ADDRESS) >/dev/null || { echo "dev server did not answer in 90s"; exit 1; }; \
	fi
	@# A server we did not start may lack the attributes; creating an existing one fails harmlessly.
	@for sa in $(SEARCH_ATTRIBUTES); do \
		$(TEMPORAL) operator search-attribute create --address $(ADDRESS) --name $$sa --type Keyword >/dev/null 2>&1 || true; \
	done

# Starts the stand-alone simulator (the demo world's Graph, token endpoint,
# Exchange Online and remote PowerShell on loopback) unless the one make
# started is still alive. It outlives workers: `$(SIM) dump` shows the world
# at any time, `$(SIM) reset` puts back the world it started from. It starts
# from the world make stop saved ($(SIM_SAVED)) when there is one, else
# from $(SIM_WORLD); on SIGTERM it saves the world there again.
sim: build | $(DATA)
	@if [ -f $(DATA)/sim.pid ] && kill -0 $$(cat $(DATA)/sim.pid) 2>/dev/null; then \
		echo "simulator already running (pid $$(cat $(DATA)/sim.pid))"; \
	else \
		world=$(SIM_WORLD); \
		if [ -f $(SIM_SAVED) ]; then \
			world=$(SIM_SAVED); \
			echo "resuming the simulated world saved at the last make stop (.data/sim/world.yaml), which matches the dev server's history;"; \
			echo "  make reset forgets both and starts afresh from $(SIM_WORLD)"; \
		fi; \
		echo "starting hybridflow-sim with $$world at https://$(SIM_LISTEN), PowerShell at http://$(SIM_GATEWAY) (log: .data/sim.log)"; \
		rm -f $(SIM_STATE)/state.json; \
		nohup $(SIM) serve --world $$world --save-on-exit $(SIM_SAVED) --listen $(SIM_LISTEN) --gateway $(SIM_GATEWAY) --state-dir $(SIM_STATE) \
			>$(DATA)/sim.log 2>&1 </dev/null & echo $$! >$(DATA)/sim.pid; \
		for i in $$(seq 1 50); do [ -f $(SIM_STATE)/state.json ] && break; \
			if ! kill -0 $$(cat $(DATA)/sim.pid) 2>/dev/null; then echo "the simulator exited at start:"; tail -20 $(DATA)/sim.log; rm -f $(DATA)/sim.pid; \
				[ $$world = $(SIM_WORLD) ] || echo "(it was resuming $(SIM_SAVED): make reset starts afresh)"; exit 1; fi; \
			sleep 0.2; done; \
		[ -f $(SIM_STATE)/state.json ] || { echo "the simulator did not start in 10s:"; tail -20 $(DATA)/sim.log; exit 1; }; \
	fi

# Starts the worker unless the one make started is still alive.
worker: build | $(DATA)
	@if [ -f $(DATA)/worker.pid ] && kill -0 $$(cat $(DATA)/worker.pid) 2>/dev/null; then \
		serves=$$(cat $(DATA)/worker.address 2>/dev/null || echo 127.0.0.1:$(TEMPORAL_PORT)); \
		if [ "$$serves" != "$(ADDRESS)" ]; then \
			echo "the worker make started serves $$serves, not $(ADDRESS): make stop first"; exit 1; \
		fi; \
		echo "worker already running (pid $$(cat $(DATA)/worker.pid))"; \
	else \
		echo "starting hybridflow-worker with $(WORKER_CONFIG) (log: .data/worker.log)"; \
		HYBRIDFLOW_TEMPORAL_ADDRESS=$(ADDRESS) nohup $(WORKER) --config $(WORKER_CONFIG) \
			>$(DATA)/worker.log 2>&1 </dev/null & echo $$! >$(DATA)/worker.pid; \
		echo "$(ADDRESS)" >$(DATA)/worker.address; \
		sleep 2; \
		if ! kill -0 $$(cat $(DATA)/worker.pid) 2>/dev/null; then \
			echo "the worker exited at start:"; tail -20 $(DATA)/worker.log; rm -f $(DATA)/worker.pid; exit 1; \
		fi; \
	fi

CONCURRENCY ?= 5

# The demo: health check, then a rollout of the demo inventory with a live
# view; it ends with a summary table (one tenant waits for an operator:
# see the README's walk-through). CLUSTER=1: on make cluster's server.
run: build $(ENGINE) sim worker
	@$(HYBRIDFLOW) doctor --address $(ADDRESS) -f $(INVENTORY) --wait 60s
	@echo
	@$(HYBRIDFLOW) rollout --address $(ADDRESS) -f $(INVENTORY) --concurrency $(CONCURRENCY) --watch
	@echo
	@echo "The simulated world as it is now: $(SIM) dump --state-dir $(SIM_STATE)   (requests: $(SIM) requests)"
ifeq ($(CLUSTER),1)
	@echo "Temporal on PostgreSQL at $(ADDRESS) (no Web UI here: docker compose runs temporal-ui);"
	@echo "  paused tenants: $(TEMPORAL) workflow list --address $(ADDRESS) --query 'HybridflowState=\"paused\"'"
else
	@echo "Temporal Web UI: http://localhost:$(UI_PORT)/namespaces/default/workflows"
	@echo "  paused tenants: http://localhost:$(UI_PORT)/namespaces/default/workflows?query=HybridflowState%3D%22paused%22"
endif
	@echo "Stop everything with: make stop"

# Ends only what make started, newest first. The simulator saves its world
# to $(SIM_SAVED) on SIGTERM (make sim resumes it).
stop:
	@for p in worker sim temporal; do \
		f=$(DATA)/$$p.pid; \
		if [ -f $$f ]; then \
			pid=$$(cat $$f); \
			if kill -0 $$pid 2>/dev/null; then \
				kill -TERM $$pid; \
				for i in $$(seq 1 40); do kill -0 $$pid 2>/dev/null || break; sleep 0.5; done; \
				if kill -0 $$pid 2>/dev/null; then kill -KILL $$pid; echo "killed $$p (pid $$pid): it did not stop in 20s"; \
				else echo "stopped $$p (pid $$pid)"; fi; \
				if [ $$p = sim ]; then \
					if [ $(SIM_SAVED) -nt $$f ]; then echo "  the simulated world is saved in .data/sim/world.yaml for the next make run (make reset forgets it)"; \
					else echo "  the simulated world was NOT saved (see .data/sim.log); make reset before the next make run, or verify will report drift"; fi; \
				fi; \
			fi; \
			rm -f $$f; \
		fi; \
	done
	@rm -f $(DATA)/worker.address
	@# The cluster's PID files name its processes; a PID that now belongs
	@# to another program is left alone.
	@if [ -d $(CLUSTER_DIR) ]; then \
		[ -x $(CLUSTER_TOOL) ] || $(GO) build -o $(CLUSTER_TOOL) ./internal/cluster/cmd/hybridflow-cluster; \
		$(CLUSTER_TOOL) stop --dir $(CLUSTER_DIR); \
	fi

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The PowerShell host bootstrap script is checked with a real PowerShell
# grammar (tree-sitter's, as WebAssembly, from npm); the check is only
# trustworthy if it can fail, so a deliberately broken script must be
# rejected with status 1 (a syntax error, not the tool failing).
PSGRAMMAR_DIR     ?= internal/exchange/shell/testdata/psgrammar
PSGRAMMAR_SCRIPTS ?= internal/exchange/shell/bootstrapps1/bootstrap.ps1
PSGRAMMAR_BROKEN  ?= $(PSGRAMMAR_DIR)/testdata/broken.ps1
PSGRAMMAR_NODE    ?= node
PSGRAMMAR_NPM     ?= npm

# npm writes node_modules/.package-lock.json on every install, so it marks an
# install that matches the committed lock file: npm ci runs when
# node_modules is missing or the lock file changed, and never otherwise.
# --ignore-scripts: only the grammar's .wasm is used; its native-addon
# install hook would just probe for prebuilt binaries we do not need.
$(PSGRAMMAR_DIR)/node_modules/.package-lock.json: $(PSGRAMMAR_DIR)/package.json $(PSGRAMMAR_DIR)/package-lock.json
	$(PSGRAMMAR_NPM) ci --prefix $(PSGRAMMAR_DIR) --ignore-scripts --no-audit --no-fund
	@touch $@

.PHONY: psgrammar-check
psgrammar-check: $(PSGRAMMAR_DIR)/node_modules/.package-lock.json
	$(PSGRAMMAR_NODE) $(PSGRAMMAR_DIR)/check.mjs $(PSGRAMMAR_SCRIPTS)
	@status=0; out=$$($(PSGRAMMAR_NODE) $(PSGRAMMAR_DIR)/check.mjs $(PSGRAMMAR_BROKEN) 2>&1) || status=$$?; \
	if [ $$status -ne 1 ]; then \
		echo "psgrammar-check: $(PSGRAMMAR_BROKEN) must be rejected with status 1, got $$status:"; \
		echo "$$out"; exit 1; \
	fi; \
	echo "psgrammar: $(PSGRAMMAR_BROKEN): rejected as expected ($$(echo "$$out" | head -n 1))"

# Windows: the on-prem worker runs on Windows hosts. make test type-checks
# every package and its dependencies for windows/amd64 from source
# (windows-check, internal/repocheck/cmd/oscheck): what breaks there is a
# file for one system using or leaving out what another declares, which the
# type-checker finds without compiling the whole tree a second time.
# windows-build is the full build, for a release.
.PHONY: windows-check
windows-check:
	$(GO) run ./internal/repocheck/cmd/oscheck -goos windows -goarch amd64 ./...

windows-build:
	GOOS=windows GOARCH=amd64 $(GO) build ./...

# Debian's Chromium for the Web UI test (internal/webui), installed once:
# nothing is done when $(CHROMIUM) exists. Where it cannot be installed (not
# root, no package mirror) make goes on and the test skips, saying so.
CHROMIUM ?= /usr/bin/chromium
.PHONY: browser
BROWSER_AFTER ?=
browser: | $(BROWSER_AFTER)
	@if [ -x $(CHROMIUM) ]; then :; else \
		echo "installing Debian's chromium for the Web UI test (first time only)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver fonts-liberation >/dev/null; } \
		|| echo "browser: could not install chromium; the Web UI test (internal/webui) will be skipped"; \
	fi

# The cluster tests (internal/cluster) and the server-config checks
# (internal/deploytest) need the Temporal server and PostgreSQL. go test
# shows a passing package's output only with -v: the cluster rollout's
# figures (its kill and restart, the tenants verified, the invariants) are
# written to a file and printed after the tests.
CLUSTER_FIGURES := $(DATA)/cluster-rollout-figures.txt
ALERTS_LOG      := $(DATA)/alerts-check.log
# On a clean machine most of make test is compiling (docs/testing.md, "The
# first make test"), so the work is spread over both cores: the
# preparations run side by side (make -j3; the browser's install after
# PostgreSQL's, apt-get holds one lock), then the tests, three packages at
# a time and the longest first, so that none starts last and runs alone
# (-vet=off: go vet ./... has run every analyzer already), while
# alerts-check (promtool's first build is mostly CPU) runs beside them;
# its output follows theirs.
TEST_PREP := $(TEMPORAL) temporal-server postgresql vet fmt-check windows-check psgrammar-check browser
TEST_FIRST := ./starter ./internal/bench ./internal/e2e ./internal/cluster ./internal/chaos ./internal/realpath ./workflows ./internal/webui
test: | $(DATA)
	@$(MAKE) --no-print-directory -j3 --output-sync=target $(TEST_PREP) BROWSER_AFTER=postgresql
	@rm -f $(CLUSTER_FIGURES)
	@$(MAKE) --no-print-directory alerts-check > $(ALERTS_LOG) 2>&1 & alerts=$$!; \
	echo "HYBRIDFLOW_CLUSTER_FIGURES=$(CLUSTER_FIGURES) $(GO) test -p 3 -vet=off -count=1 -timeout 30m $(TEST_FIRST) ./...  (alerts-check beside it)"; \
	HYBRIDFLOW_CLUSTER_FIGURES=$(CLUSTER_FIGURES) $(GO) test -p 3 -vet=off -count=1 -timeout 30m $(TEST_FIRST) ./...; status=$$?; \
	wait $$alerts; alerts_status=$$?; \
	echo "--- alerts-check (exit $$alerts_status)"; cat $(ALERTS_LOG); \
	cat $(CLUSTER_FIGURES) 2>/dev/null || echo "(the cluster rollout did not run: no $(CLUSTER_FIGURES))"; \
	[ $$status = 0 ] && [ $$alerts_status = 0 ]

# The long chaos suite (internal/chaos): 300 generated tenants rolled out
# while the worker is killed 8 times, the dev server SIGKILLed and restarted
# twice, 429/503/drop/host-crash/apply-then-drop/hung-cmdlet windows open and
# 30 renewals start for tenants whose setup holds the lock, through the real
# worker configuration against the stand-alone simulator; then no duplicate,
# no foreign object lost, no staged key lost, no orphaned session. -v prints
# its figures.
# make test runs the short version (20 tenants) through go test ./...
.PHONY: chaos
chaos: $(TEMPORAL)
	HYBRIDFLOW_CHAOS=full $(GO) test -count=1 -timeout 30m -v -run TestChaosRollout ./internal/chaos

# Recorded workflow histories (workflows/testdata/histories): the tests
# that run each workflow type on the dev server rewrite their histories
# (HYBRIDFLOW_RECORD_HISTORIES=1), then the replay test replays every file
# and the registration check finds a history for every workflow type.
# After a versioned change, first rename the files being replaced to the
# old version's prefix (see workflows/replay_test.go); keep them while a
# workflow started at that version may run.
.PHONY: histories
histories: $(TEMPORAL)
	HYBRIDFLOW_RECORD_HISTORIES=1 $(GO) test -count=1 -timeout 20m ./internal/e2e
	HYBRIDFLOW_RECORD_HISTORIES=1 $(GO) test -count=1 -run '^TestRolloutPagedDevServer$$' ./workflows
	HYBRIDFLOW_RECORD_HISTORIES=1 $(GO) test -count=1 -run '^TestRenewalScheduleRenewsOnDevServer$$' ./internal/renewaltest
	HYBRIDFLOW_RECORD_HISTORIES=1 $(GO) test -count=1 -run '^TestVerifyScheduleRecordsDrift$$' ./starter
	$(GO) test -count=1 -run 'Replay' ./workflows
	$(GO) test -count=1 -run '^TestEveryWorkflowTypeHasRecordedHistory$$' ./internal/workerhost
	git status --short workflows/testdata/histories

# Performance: Go benchmarks of the pure parts, then the rollout harness
# (durable through the real dev server and worker against the concurrent
# and sequential baselines, then the durable main point again on the
# cluster engine: temporal-server on PostgreSQL, as make cluster runs it,
# with CPU per tenant for the server and PostgreSQL; -cluster=false in
# BENCH_FLAGS leaves it out); writes bench/results/ and prints the table.
BENCH_FLAGS ?=
# The file whose bench blocks the harness rewrites.
BENCH_README ?= bench/README.md
bench: $(TEMPORAL) temporal-server postgresql
	@mkdir -p bench/results
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem ./internal/plan ./internal/sim ./activities | tee bench/results/micro.txt
	$(GO) build -o $(BIN)/rolloutbench ./internal/bench/cmd/rolloutbench
	$(GO) build -o $(SIMHOST) ./internal/sim/cmd/hybridflow-simhost
	$(BIN)/rolloutbench -out bench/results -readme $(BENCH_README) $(BENCH_FLAGS)
	$(BIN)/rolloutbench -out bench/results/tenth -readme $(BENCH_README) -readme-block bench-tenth -sweep "" -seq-tenants 12 $(BENCH_TENTH_FLAGS)

# Cost against rollout size: 100, 500, 1,000 and 10,000 fresh tenants, each
# durable (a dev server of its own) and as the concurrent floor, at C=50;
# tenants/min, CPU per tenant, peak RSS, continue-as-new handovers and
# bench/results/scale/cost.svg. 36 minutes on this 2-core machine (the 10,000-tenant
# durable rollout alone is 24).
BENCH_SCALE ?= 100,500,1000,10000
bench-scale: $(TEMPORAL)
	@mkdir -p bench/results/scale
	$(GO) build -o $(BIN)/rolloutbench ./internal/bench/cmd/rolloutbench
	$(GO) build -o $(SIMHOST) ./internal/sim/cmd/hybridflow-simhost
	$(BIN)/rolloutbench -scale $(BENCH_SCALE) -out bench/results/scale -readme $(BENCH_README) -readme-block bench-scale $(BENCH_SCALE_FLAGS)

# The second profile: the main point again at a tenth of the real systems'
# latencies (assumed typical values, not measured here: an on-prem cmdlet
# ~1.5 s, a Graph request ~0.4 s, an Exchange Online call ~1.2 s), where a
# tenant's setup is mostly waiting, as in production.
BENCH_TENTH_FLAGS ?= -onprem-latency 150ms -onprem-jitter 50ms -graph-latency 40ms -graph-jitter 15ms -exo-latency 120ms -exo-jitter 40ms

# Fuzzing: every target as package:Function. internal/fuzzlist's test
# fails when a Fuzz function exists that this list does not name. go test
# ./... runs the committed seed corpora (testdata/fuzz/) as unit tests;
# this runs the fuzzer on each target in turn. New interesting inputs are
# minimized for at most FUZZMINIMIZETIME: the default (60s) would spend a
# whole FUZZTIME minimizing one YAML document. FUZZPARALLEL is the number
# of fuzz workers (1: the build machine is shared).
FUZZ_TARGETS := \
	./internal/config:FuzzParseInventory \
	./internal/config:FuzzParseWorkerConfig \
	./internal/config:FuzzValidators \
	./internal/certs:FuzzCheck \
	./internal/certs:FuzzThumbprint \
	./internal/codec:FuzzDecode \
	./internal/codec:FuzzRoundTrip \
	./internal/codec:FuzzParseKey \
	./internal/exchange/online:FuzzInvokeReply \
	./internal/exchange/online:FuzzParseRetryAfter \
	./internal/exchange/shell:FuzzCodecRoundTrip \
	./internal/graph:FuzzErrorReply \
	./internal/plan:FuzzMergeKeys \
	./internal/plan:FuzzUnionSPNs \
	./internal/plan:FuzzParseBuild
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 5s
FUZZPARALLEL ?= 1
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) \
			-parallel $(FUZZPARALLEL) $$pkg; \
	done

# A fresh demo: the saved simulated world and the dev server's history go
# together, so the next make run meets a world that matches its history.
# The cluster's database (.data/cluster, make run CLUSTER=1) is kept:
# make clean removes it with everything else.
reset: stop
	rm -f $(SIM_SAVED) $(DATA)/temporal.db $(DATA)/temporal.db-shm $(DATA)/temporal.db-wal $(DATA)/temporal.db-journal
	@if [ -d $(CLUSTER_DIR) ]; then echo "kept .data/cluster (make run CLUSTER=1's history): make clean removes it too"; fi

# Everything under .data: the saved world, the dev server's history, the
# cluster, logs, the simulator's CA and secret.
clean: stop
	rm -rf $(DATA)
