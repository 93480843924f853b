#!/usr/bin/env bash
# Makes sure the programs behind the project's private local services are
# installed: PostgreSQL and Redis from Debian's packages, and moto_server,
# which is not packaged by Debian and must already be on PATH. For the tests
# also chromium, zbar-tools and librsvg2-bin (the share page's browser and QR
# tests).
#
# `make run` and `make test` call this before starting anything, so it is
# idempotent and prints nothing when everything is present. It never starts
# a service: internal/devstack starts private instances on free loopback
# ports, so a cluster Debian may start on installation is simply not used.
set -euo pipefail

have_postgres() {
	compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

have_redis() {
	command -v redis-server >/dev/null 2>&1
}

# Fail before installing anything: without moto the tests cannot run, and
# skipping the S3/SQS/SES tests silently is worse than stopping here.
# Only the tests need moto (`ensure-deps.sh test`); the local run uses no AWS service.
if [ "${1:-}" = test ] && ! command -v moto_server >/dev/null 2>&1; then
	echo "ensure-deps: moto_server is not on PATH; install it with" >&2
	echo "ensure-deps:   python3 -m pip install 'moto[server]'" >&2
	echo "ensure-deps: the tests run S3, SQS and SES against it and are never skipped" >&2
	exit 1
fi

# What is missing, as Debian package names. The tests also need a browser and a QR decoder for
# the share pages (chromium, zbarimg, and rsvg-convert to rasterise the SVG code).
missing=()
have_postgres || missing+=(postgresql)
have_redis || missing+=(redis-server)
if [ "${1:-}" = test ]; then
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
	command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
	command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)
fi
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "ensure-deps: ${missing[*]} missing and installing needs root (no sudo found)" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "ensure-deps: installing ${missing[*]} from Debian packages" >&2
# apt's chatter is shown only when it fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! {
	"${sudo[@]}" apt-get update -qq &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${missing[@]}"
} >"$log" 2>&1; then
	cat "$log" >&2
	echo "ensure-deps: installing ${missing[*]} failed" >&2
	exit 1
fi

if ! have_postgres; then
	echo "ensure-deps: postgresql installed but no /usr/lib/postgresql/*/bin/postgres found" >&2
	exit 1
fi
if ! have_redis; then
	echo "ensure-deps: redis-server installed but not found on PATH" >&2
	exit 1
fi
if [ "${1:-}" = test ]; then
	for cmd in chromium zbarimg rsvg-convert; do
		if ! command -v "$cmd" >/dev/null 2>&1; then
			echo "ensure-deps: $cmd installed but not found on PATH" >&2
			exit 1
		fi
	done
fi
