# The two commands of the README: `make run` and `make test`.
GO ?= go
# The sample portal's client secret (demo only; both processes read it).
export PORTAL_CLIENT_SECRET ?= demo-portal-secret-for-local-use-only

.PHONY: run test test-race lint build clean

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
# missing, except in CI (CI=true), where that is a failure.
test:
	$(GO) test -count=1 ./...

test-race:
	$(GO) test -count=1 -race ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

build:
	$(GO) build -o bin/ ./cmd/...

clean:
	rm -rf bin
