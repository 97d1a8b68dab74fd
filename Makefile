# docker xcheckpoint. `make help` lists the targets.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Evaluated once: a tree edited during a build must not give the helper image
# one version and its bundle another.
VERSION := $(VERSION)
MODULE := github.com/xcheckpoint/docker-xcheckpoint
LDFLAGS := -s -w -X $(MODULE).Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'
HELPER_IMAGE := docker-xcheckpoint-helper:$(VERSION)
CRIU_DIR ?= /var/cache/xcheckpoint/criu
PLUGIN_DIR ?= $(or $(DOCKER_CONFIG),$(HOME)/.docker)/cli-plugins
CROSS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
CROSS_TAGS ?=
# PLUGIN_TAGS are the plugin's extra build tags: `make e2e` builds it with
# e2e, which compiles in the end-to-end tests' hooks (internal/testhooks/testhooks_e2e.go);
# a release (build, build-bundled, install, cross) never has them.
PLUGIN_TAGS ?=

.PHONY: bench-migrate docs docs-check e2e-docker28 docker28 fuzz help build build-bundled bundle cross-bundled install helper-image demo test unit e2e e2e-vm vm-host vm-host-stop vm-host-status bench cross lint fmt clean docker

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the plugin and the helper binary into bin/
	CGO_ENABLED=0 go build -tags '$(PLUGIN_TAGS)' $(GOFLAGS_BUILD) -o bin/docker-xcheckpoint ./cmd/docker-xcheckpoint
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build $(GOFLAGS_BUILD) -o bin/linux-amd64/xcheckpoint-helper ./cmd/xcheckpoint-helper
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build $(GOFLAGS_BUILD) -o bin/linux-amd64/xcheckpoint-launch ./cmd/xcheckpoint-launch

# The plugin with its helper image embedded: it loads the image onto any daemon
# (amd64) that lacks it. `make build` stays free of the image for quick builds.
bundle: helper-image ## Save the helper image into internal/helperrun/bundle/ (gzip) for build-bundled
	./hack/bundle.sh $(HELPER_IMAGE) $(VERSION) internal/helperrun/bundle

build-bundled: bundle ## Build the plugin with the helper image embedded (build tag bundled)
	CGO_ENABLED=0 go build -tags 'bundled $(PLUGIN_TAGS)' $(GOFLAGS_BUILD) -o bin/docker-xcheckpoint ./cmd/docker-xcheckpoint

install: build-bundled ## Install the plugin (helper image embedded) in ~/.docker/cli-plugins
	install -d -m 0755 $(PLUGIN_DIR)
	install -m 0755 bin/docker-xcheckpoint $(PLUGIN_DIR)/docker-xcheckpoint
	@echo "installed $(PLUGIN_DIR)/docker-xcheckpoint ($(VERSION))"

docker: ## Make sure a Docker engine answers (installs docker.io and starts dockerd if needed)
	./hack/docker-up.sh

helper-image: build docker ## Build the helper image offline (CRIU 4.2 from Debian forky, no registry)
	@# One build at a time reads or rewrites the shared CRIU root (parallel
	@# builds from several checkouts would otherwise see it half-made).
	mkdir -p $(CRIU_DIR)
	flock $(CRIU_DIR)/.build.lock sh -c './hack/criu-root.sh $(CRIU_DIR) && ./hack/helper-image.sh $(HELPER_IMAGE) $(VERSION) $(CRIU_DIR)'

demo: ## Main job end to end: install everything, checkpoint a running container, restore it
	./hack/demo.sh

test: ## All tests: unit tests, then end-to-end tests against a real daemon and real CRIU
	./hack/test.sh

fuzz: ## Fuzz every parser we own, FUZZTIME each (default 10s); the corpus lives in testdata/fuzz
	FUZZTIME=$(or $(FUZZTIME),10s) ./hack/fuzz.sh

unit: ## Unit tests only
	go test ./...

# The end-to-end tests run bin/docker-xcheckpoint, built here with their hooks
# (PLUGIN_TAGS=e2e); `make install` afterwards builds a release again.
e2e: ## End-to-end tests only (needs root and a Docker engine)
	$(MAKE) --no-print-directory build-bundled PLUGIN_TAGS=e2e
	XCHECKPOINT_NATIVE_CRIU=1 ./hack/docker-up.sh
	./hack/test-images.sh
	./hack/host-criu.sh $(CRIU_DIR)
	./hack/tools.sh
	go test -tags e2e -count=1 -timeout 40m -v ./test/e2e/

# The second Docker host: Docker 28.5 on cgroup v2 (systemd driver) in a QEMU
# VM (software emulation, slow and CPU-heavy: stop it when done). Its disk is
# built once into /var/cache/xcheckpoint/vm-forky, the services image's root
# into /var/cache/xcheckpoint/services.
vm-host: helper-image ## Start the cgroup v2 Docker host VM on 127.0.0.1:23750 (stop it with make vm-host-stop)
	./hack/test-images.sh
	./hack/service-images.sh
	HELPER_IMAGE=$(HELPER_IMAGE) ./hack/vm-host.sh start

vm-host-stop: ## Stop the cgroup v2 VM
	./hack/vm-host.sh stop

vm-host-status: ## Is the cgroup v2 VM running, and on which port
	./hack/vm-host.sh status

# The tests run against each Docker 28.5 daemon: a subset, chosen and
# justified in hack/test.sh.
DOCKER28_TESTS ?= ^(TestCheck|TestCheckJSON|TestVersion|TestCheckImageStore|TestHelperImageSentOnce|TestDefaultCreateRestoresIntoNewContainer|TestRestoreScratchImage|TestArchiveRestoreInput|TestRestoreNativeDocker28|TestRestoreNative|TestCreateShellCounter|TestRestoreNewContainer256MiB|TestRestoreNewContainerTree|TestArchiveRoundTrip|TestArchiveRootfsAndVolume|TestArchiveKeepExportImportStdin|TestListInspectRemove|TestZombieInTree|TestInspectArchive|TestRestoreOtherCPU|TestRestoredDiesReported|TestRestoreStartsAfresh|TestRestoreLeavesNoVolume|TestRestoreImageLinkNotFollowed|TestRestoreWatchUnderRestartPolicy|TestPodmanRestoresOurArchive|TestCheckpointImageRoundTrip|TestRestoreFromImageRefusals|TestDockerRestoresPodmanArchive|TestDockerRestoresPodmanImage)$$

e2e-docker28: ## End-to-end tests against Docker 28.5 (overlay2, then the containerd image store), a subset (DOCKER28_TESTS)
	$(MAKE) --no-print-directory build-bundled PLUGIN_TAGS=e2e
	./hack/test-images.sh
	./hack/e2e-docker28.sh $(HELPER_IMAGE) '$(DOCKER28_TESTS)'

docker28: ## Start Docker 28.5 beside the host's daemon, both image stores (hack/docker28.sh; stop with hack/docker28.sh stop)
	./hack/test-images.sh
	HELPER_IMAGE=$(HELPER_IMAGE) ./hack/docker28.sh start

# The tests run on the VM: all of them (hack/test.sh says what they cost).
VM_TESTS ?= ^TestVM

e2e-vm: ## End-to-end tests on the cgroup v2 VM, Docker 28.5 (boots it, runs VM_TESTS, stops it)
	$(MAKE) --no-print-directory build-bundled PLUGIN_TAGS=e2e
	./hack/test-images.sh
	./hack/service-images.sh
	./hack/e2e-vm.sh $(HELPER_IMAGE) '$(VM_TESTS)'

bench: ## Benchmark create against Docker's and Podman's checkpoint, 16 MiB to 1 GiB, and migrate against create -o - | restore --input - (slow, not part of test)
	CRIU_DIR=$(CRIU_DIR) ./hack/bench.sh
	./hack/bench-migrate.sh

bench-migrate: build-bundled ## Benchmark migrate against create -o - | restore --input - between two Docker 28.5 daemons (16 MiB and 1 GiB)
	./hack/bench-migrate.sh

cross: ## Build the plugin for every supported OS and architecture
	@set -e; for p in $(CROSS); do os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "  $$os/$$arch"; CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -tags '$(CROSS_TAGS)' $(GOFLAGS_BUILD) -o bin/cross/docker-xcheckpoint-$$os-$$arch$$ext ./cmd/docker-xcheckpoint; done

cross-bundled: bundle ## Build every platform's plugin with the (linux/amd64) helper image embedded
	$(MAKE) --no-print-directory cross CROSS_TAGS=bundled

lint: docs-check ## gofmt, go vet, go mod tidy, the plugin builds for macOS and Windows, and docs/reference is current
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go vet -tags e2e ./...
	@# The plugin runs on the user's machine: only the Linux-only mains and
	@# helper-side files may be left out there (build constraints).
	GOOS=darwin go build -trimpath ./...
	GOOS=windows go build -trimpath ./...
	@tmp=$$(mktemp -d) && cp go.mod go.sum "$$tmp"/ && go mod tidy && \
		if ! cmp -s go.mod "$$tmp"/go.mod || ! cmp -s go.sum "$$tmp"/go.sum; then \
			echo "go mod tidy changes go.mod or go.sum: run it and commit the result"; \
			cp "$$tmp"/go.mod "$$tmp"/go.sum .; rm -rf "$$tmp"; exit 1; fi; rm -rf "$$tmp"

# The command reference is generated from the cobra commands (docs/generate,
# docker's cli-docs-tool); only the block between its MARKER_GEN comments is, the
# rest of each page is written by hand.
docs: ## Regenerate the command reference in docs/reference from the commands
	go run ./docs/generate -source docs/reference

docs-check: ## Fail when docs/reference is not what make docs would write
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	go run ./docs/generate -quiet -source docs/reference -target "$$tmp"; \
	diff -ru docs/reference "$$tmp" || { echo "docs/reference is out of date: run make docs and commit the result"; exit 1; }

fmt: ## Format the code
	gofmt -w .

clean: ## Remove build output (and the saved helper image archive)
	rm -rf bin internal/helperrun/bundle
