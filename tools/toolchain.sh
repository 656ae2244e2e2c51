#!/usr/bin/env bash
# Builds the local cluster toolchain from Go modules and caches each binary by version.
#
#   tools/toolchain.sh build [component ...]   build what is missing (all by default)
#   tools/toolchain.sh path NAME               print the cached path of a binary
#   tools/toolchain.sh list                    list components, versions and cache state
#
# Components: helm3 helm4 etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok registry
# Cache: ${HELM_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-engine}/bin/NAME-VERSION/NAME
# Every binary is built in a temp dir and renamed into place, so a half-built entry never exists.
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/versions.env
. "$TOOLS_DIR/versions.env"

CACHE_DIR=${HELM_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-engine}
BIN_CACHE=$CACHE_DIR/bin
LOG_DIR=$CACHE_DIR/logs
ALL_COMPONENTS=(helm3 helm4 etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok registry)

die() { echo "toolchain: $*" >&2; exit 1; }

component_version() {
  case "$1" in
    helm3) echo "$HELM3_VERSION" ;;
    helm4) echo "$HELM4_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) echo "$KUBERNETES_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    registry) echo "$REGISTRY_VERSION" ;;
    *) die "unknown component '$1' (known: ${ALL_COMPONENTS[*]})" ;;
  esac
}

binary_path() {
  local name=$1 version
  version=$(component_version "$name")
  echo "$BIN_CACHE/$name-$version/$name"
}

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed or not on PATH. Install Go >= 1.26 (https://go.dev/doc/install or the 'golang' package of your distribution) and run 'make toolchain' again."
  local goversion minor
  goversion=$(go env GOVERSION)
  minor=$(echo "$goversion" | sed -E 's/^go1\.([0-9]+).*/\1/')
  if [[ "$minor" =~ ^[0-9]+$ ]] && (( minor < 26 )); then
    die "Go $goversion is too old: the pinned modules need Go >= 1.26. Upgrade Go and run 'make toolchain' again."
  fi
}

# Writes the wrapper go.mod for one component into $1 (the work dir).
write_wrapper_module() {
  local work=$1 name=$2 version=$3
  printf 'module helmengine.local/toolchain/%s\n\ngo 1.26\n' "$name" > "$work/go.mod"
  case "$name" in
    kube-*|kubectl)
      # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
      # local paths; a dependent module must pin each to the published v0.MINOR.PATCH.
      local gomod staging_version
      gomod=$(go mod download -json "k8s.io/kubernetes@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
      staging_version="v0.${version#v1.}"
      go mod edit -json "$gomod" | python3 -c '
import json, sys
staging_version = sys.argv[1]
mod = json.load(sys.stdin)
for req in mod.get("Require") or []:
    if req["Version"] == "v0.0.0" and req["Path"].startswith("k8s.io/"):
        print("-replace=%s=%s@%s" % (req["Path"], req["Path"], staging_version))
' "$staging_version" | xargs -r go mod edit -modfile "$work/go.mod"
      ;;
  esac
}

component_package() {
  case "$1" in
    helm3) echo "helm.sh/helm/v3/cmd/helm" ;;
    helm4) echo "helm.sh/helm/v4/cmd/helm" ;;
    etcd) echo "go.etcd.io/etcd/server/v3" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) echo "k8s.io/kubernetes/cmd/$1" ;;
    kwok) echo "sigs.k8s.io/kwok/cmd/kwok" ;;
    registry) echo "github.com/distribution/distribution/v3/cmd/registry" ;;
  esac
}

component_ldflags() {
  local name=$1 version=$2 minor
  case "$name" in
    helm3)
      minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
      # helm 3 takes the Kubernetes version it reports to charts from ldflags, not build info.
      echo "-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
        "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
        "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" ;;
    helm4)
      echo "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" ;;
    kube-*|kubectl)
      minor=$(echo "$version" | cut -d. -f2)
      local x
      for x in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate=1970-01-01T00:00:00Z ' \
          "$x" "$version" "$x" "$x" "$minor" "$x" "$x"
      done
      echo "-s -w" ;;
    kwok)
      echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$version -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION" ;;
    registry)
      # Without the stamp the binary reports the hand-written "vX.Y.Z+unknown".
      echo "-s -w -X github.com/distribution/distribution/v3/version.version=$version" ;;
    etcd) echo "-s -w" ;;
  esac
}

# Prints the version the built binary reports, to prove the stamp took.
reported_version() {
  local name=$1 bin=$2
  case "$name" in
    helm3|helm4) "$bin" version --template '{{.Version}}' ;;
    etcd) "$bin" --version | sed -n 's/^etcd Version: /v/p' ;;
    kubectl) "$bin" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' ;;
    kube-*) "$bin" --version | awk '{print $2}' ;;
    kwok) "$bin" --version | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -n1 ;;
    # "<argv0> github.com/distribution/distribution/v3 vX.Y.Z"
    registry) "$bin" --version | awk '{print $3}' ;;
  esac
}

build_one() {
  local name=$1 index=$2 total=$3
  local version dest work pkg ldflags log started elapsed got
  version=$(component_version "$name")
  dest=$BIN_CACHE/$name-$version
  if [[ -x "$dest/$name" ]]; then
    echo "[$index/$total] $name $version: cached"
    return 0
  fi
  mkdir -p "$BIN_CACHE" "$LOG_DIR" "$CACHE_DIR/tmp"
  log=$LOG_DIR/build-$name-$version.log
  work=$(mktemp -d "$CACHE_DIR/tmp/$name.XXXXXX")
  pkg=$(component_package "$name")
  ldflags=$(component_ldflags "$name" "$version")
  echo "[$index/$total] $name $version: building $pkg (log: $log)"
  started=$(date +%s)
  if ! (cd "$work" && write_wrapper_module "$work" "$name" "$version" && go get "$pkg@$version") >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$work"
    die "$name $version: downloading the module failed (see $log). Check that the Go module proxy is reachable (go env GOPROXY) and run 'make toolchain' again."
  fi
  if ! (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$work/out/$name" "$pkg") >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -rf "$work"
    die "$name $version: go build failed (see $log). Nothing was cached; fix the cause and run 'make toolchain' again."
  fi
  got=$(reported_version "$name" "$work/out/$name" 2>>"$log" || true)
  if [[ "$got" != "$version" ]]; then
    rm -rf "$work"
    die "$name: the built binary reports version '$got', expected '$version' (version stamping failed); nothing was cached."
  fi
  cp "$work/go.mod" "$work/go.sum" "$work/out/" 2>/dev/null || true
  rm -rf "$dest.partial"
  mv "$work/out" "$dest.partial"
  mv -T "$dest.partial" "$dest"
  rm -rf "$work"
  elapsed=$(( $(date +%s) - started ))
  echo "$name $version ${elapsed}s $(date -u +%FT%TZ)" >> "$CACHE_DIR/build-times.txt"
  echo "[$index/$total] $name $version: built in ${elapsed}s"
}

cmd_build() {
  local components=("$@") i=0
  (( ${#components[@]} )) || components=("${ALL_COMPONENTS[@]}")
  for c in "${components[@]}"; do component_version "$c" >/dev/null; done
  local missing=0
  for c in "${components[@]}"; do [[ -x "$(binary_path "$c")" ]] || missing=1; done
  (( missing )) && require_go
  mkdir -p "$CACHE_DIR"
  # One build at a time per cache: a second caller waits rather than racing the rename.
  exec 9>"$CACHE_DIR/.build.lock"
  flock 9
  local started
  started=$(date +%s)
  for c in "${components[@]}"; do
    i=$((i + 1))
    build_one "$c" "$i" "${#components[@]}"
  done
  echo "toolchain ready in $(( $(date +%s) - started ))s: $BIN_CACHE"
}

cmd_list() {
  local c p
  for c in "${ALL_COMPONENTS[@]}"; do
    p=$(binary_path "$c")
    if [[ -x "$p" ]]; then echo "$c $(component_version "$c") cached $p"; else echo "$c $(component_version "$c") missing"; fi
  done
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  path) [[ $# -eq 2 ]] || die "usage: $0 path NAME"; binary_path "$2" ;;
  list) cmd_list ;;
  *) die "usage: $0 build [component ...] | path NAME | list" ;;
esac
