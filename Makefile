# The two commands of the README: `make run` and `make test`.
GO ?= go
# The sample portal's client secret (demo only; both processes read it).
export PORTAL_CLIENT_SECRET ?= demo-portal-secret-for-local-use-only

.PHONY: run test test-race bench fuzz lint build clean

# Starts the provider on http://localhost:8080 (SQLite in ./data, in-process
# pending logins, SMS codes in the log) with a demo user and the sample
# portal on http://localhost:8081. Ctrl-C stops both.
run:
	@$(GO) build -o bin/idp ./cmd/idp && $(GO) build -o bin/portal-demo ./cmd/portal-demo
	@trap 'kill 0' INT TERM; \
	IDP_SMS_PROVIDER=console IDP_EMAIL_PROVIDER=console IDP_EMAIL_FROM=no-reply@localhost \
	IDP_LOG_FORMAT=text ./bin/idp serve --demo & \
	./bin/portal-demo & \
	wait

# Every test. Tests that need PostgreSQL, Redis or Chromium find them on
# 127.0.0.1 (see .ci/run to install and start them); they skip when one is
# missing, except in CI (CI=true), where that is a failure. Then every
# benchmark once (-benchtime=1x, no tests), so that none stops compiling or
# working unnoticed; each is cheap at one iteration.
test:
	$(GO) test -count=1 ./...
	$(GO) test -run '^$$' -bench . -benchtime=1x ./...

test-race:
	$(GO) test -count=1 -race ./...

# Every benchmark, measured: no tests, allocations reported, BENCHTIME per
# benchmark and BENCHCOUNT runs of each (10 for benchstat); go test runs
# the packages' benchmarks one package at a time. BENCH selects benchmarks
# by name, BENCHPKG packages: make bench BENCH=TokenEndpoint BENCHPKG=./idp
BENCH ?= .
BENCHTIME ?= 2s
BENCHCOUNT ?= 1
BENCHPKG ?= ./...
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) -timeout 60m $(BENCHPKG)

# Every fuzz target for FUZZTIME each, one after another: go test fuzzes
# one target of one package at a time. The targets are what
# go test -list '^Fuzz' ./... finds; a failing input is saved under the
# package's testdata/fuzz/<Target>/ (commit it: go test runs it from then
# on) and stops the run. make test runs only the seeds.
FUZZTIME ?= 30s
fuzz:
	@list=$$($(GO) test -list '^Fuzz' ./...) || { echo "$$list"; exit 1; }; \
	echo "$$list" | awk '/^Fuzz/ { n = n " " $$1; next } /^ok/ { k = split(n, a, " "); for (i = 1; i <= k; i++) print $$2, a[i]; n = "" }' | \
	while read -r pkg target; do \
		echo "== $$target ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg" </dev/null || exit 1; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

build:
	$(GO) build -o bin/ ./cmd/...

clean:
	rm -rf bin
