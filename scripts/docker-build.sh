#!/usr/bin/env bash
# Builds the static binaries into bin/ and the image from them (FROM scratch:
# nothing is pulled). Usage: scripts/docker-build.sh [TAG]  (default simgate:local)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-simgate:local}
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o bin/simgate ./cmd/simgate
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/relying-party ./examples/relying-party
docker build -q -t "$tag" .
