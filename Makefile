# The verbs a Go developer expects. `make run` and `make test` work on a fresh Debian machine:
# they install what is missing (PostgreSQL and Redis from Debian's packages) and start private
# instances on loopback ports.
SHELL := /bin/bash
GO    ?= go
PKGS  ?= ./...

.PHONY: run test test-topology generate check-generated vet lint build dist bench load migrate deps deps-test

run: deps ## run API + worker locally with private PostgreSQL and Redis (Swagger UI at /docs/)
	$(GO) build -o bin/bcactl ./cmd/bcactl
	./bin/bcactl dev

test: deps-test ## generate, vet, check gen/ drift, run every test with -race against real services, then the Redis tests on a Redis Cluster
	$(GO) generate ./...
	@$(MAKE) --no-print-directory check-generated vet
	$(GO) run ./cmd/bcactl with-services -- bash -c '$(GO) test -race -count=1 -timeout 30m $(PKGS) && GO=$(GO) bash scripts/test-redis-cluster.sh'

test-topology: deps-test ## 2 API + 2 worker processes, Redis Cluster, SQS/S3 (moto) under a 60 s mixed load with faults
	$(GO) run ./cmd/bcactl with-services -- $(GO) test -tags topology -count=1 -v -timeout 20m -run '^TestTopology$$' ./internal/e2e/

deps:
	@bash scripts/ensure-deps.sh

deps-test:
	@bash scripts/ensure-deps.sh test

generate: ## regenerate gen/ from openapi.yaml and queries/
	$(GO) generate ./...

check-generated: ## fail when gen/ differs from what go generate produces
	@if [ -n "$$(git status --porcelain -- gen/)" ]; then \
		echo "gen/ is stale: run 'go generate ./...' and commit it"; git status --porcelain -- gen/; exit 1; fi

vet: ## go vet and gofmt
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi

lint: vet ## vet, gofmt, staticcheck and deadcode of the hand-written code
	$(GO) tool staticcheck $$($(GO) list ./... | grep -v /gen/)
	@dead=$$($(GO) tool deadcode -filter '^github.com/bca-app/backend/(cmd|internal)/' ./... \
		| grep -vE '^internal/(testenv|e2e|syncsvc/synctest|syncfile/syncfiletest|push/fcmtest)/'); \
	if [ -n "$$dead" ]; then echo "unreachable functions (deadcode):"; echo "$$dead"; exit 1; fi

build: ## build the binaries into ./bin
	$(GO) build -o bin/ ./cmd/...

dist: ## static binaries (api, worker, bcactl) and the worker's Lambda zips (arm64, amd64) into ./dist
	$(GO) run ./cmd/bcactl dist dist

.PHONY: image
IMAGE      ?= bca-api
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
image: dist ## the API's container image (deploy/Dockerfile, FROM scratch) from ./dist, with buildah, podman or docker
	cp /etc/ssl/certs/ca-certificates.crt dist/ca-certificates.crt
	printf 'nonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' > dist/passwd
	@engine=$$(command -v buildah || command -v podman || command -v docker); \
	if [ -z "$$engine" ]; then echo "no container engine: install buildah (apt-get install buildah)"; exit 1; fi; \
	case "$$engine" in *buildah) cmd="$$engine bud";; *) cmd="$$engine build";; esac; \
	echo "$$cmd --arch $(IMAGE_ARCH) -f deploy/Dockerfile -t $(IMAGE) dist"; \
	$$cmd --arch $(IMAGE_ARCH) -f deploy/Dockerfile -t $(IMAGE) dist

bench: deps-test ## run the Go benchmarks against real services
	$(GO) run ./cmd/bcactl with-services -- $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

load: deps ## load test a running `make run` (see README: benchmarks)
	$(GO) run ./cmd/bcaload $(ARGS)

migrate: ## apply migrations to DATABASE_URL
	$(GO) run ./cmd/bcactl migrate
