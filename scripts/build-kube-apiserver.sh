#!/usr/bin/env bash
# Builds a real kube-apiserver for the tests of dr-drill's Kubernetes code, from Debian's own `kubernetes`
# source package (1.20.2, the whole tree; Debian builds only kubectl from it) with Debian's Go 1.19, and
# installs Debian's etcd. No registry here ships an API server, and kube-rs's envtest downloads binaries at
# run time, which cannot work here. Idempotent: a second run only checks.
#   $ASSETS/k8s/kube-apiserver   the binary (version v1.20.2)
# Steps (see ../shared/lab-notes): fetch the source package without touching /etc/apt; replace the vendored
# modern-go/reflect2 1.0.1 (panics under Go >= 1.18 on the first CRD create) with Debian's 1.0.2; build the
# vendored openapi-gen and regenerate pkg/generated/openapi (the orig tarball lacks it); go build in GOPATH
# mode with -tags providerless and the version stamped.
set -euo pipefail
ASSETS=${DR_DRILL_ASSETS:-/opt/dr-drill}
OUT="$ASSETS/k8s"
VERSION=v1.20.2
log() { printf 'build-kube-apiserver: %s\n' "$*" >&2; }

if [ -x "$OUT/kube-apiserver" ] && "$OUT/kube-apiserver" --version 2>/dev/null | grep -q "$VERSION"; then
  exit 0
fi
need=()
for p in golang-go etcd-server openssl curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
go version | grep -q 'go1\.19' || { log "needs Debian's Go 1.19 (found: $(go version)); Go 1.24+ breaks this tree's vendored reflect2"; exit 1; }

work=${DR_DRILL_K8S_BUILD:-/var/tmp/dr-drill-k8s-build}
mkdir -p "$work/apt/lists/partial" "$work/dl"
echo "deb-src http://deb.debian.org/debian bookworm main" > "$work/apt/sources.list"
apt_src=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/apt/lists")
tree="$work/gopath/src/k8s.io/kubernetes"
if [ ! -f "$tree/cmd/kube-apiserver/apiserver.go" ]; then
  log "fetching Debian's kubernetes source package"
  apt-get "${apt_src[@]}" update -qq
  ( cd "$work/dl" && apt-get "${apt_src[@]}" source --download-only -qq kubernetes 2>/dev/null )
  orig=$(ls "$work"/dl/kubernetes_*.orig.tar.gz | head -n1)
  rm -rf "$work/gopath" "$work/x"; mkdir -p "$work/x" "$(dirname "$tree")"
  tar -xzf "$orig" -C "$work/x"
  mv "$work"/x/kubernetes-* "$tree"
  # reflect2 1.0.2 from Debian over the vendored 1.0.1
  ( cd "$work/dl" && apt-get download -qq golang-github-modern-go-reflect2-dev )
  rm -rf "$work/reflect2"; mkdir -p "$work/reflect2"
  dpkg-deb -x "$work"/dl/golang-github-modern-go-reflect2-dev_*.deb "$work/reflect2"
  r2="$tree/vendor/github.com/modern-go/reflect2"
  rm -f "$r2"/go_above_17.go "$r2"/go_below_17.go "$r2"/go_below_19.go
  cp "$work"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$work"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$r2"/
  rm -f "$r2"/*_test.go
fi

export GOPATH="$work/gopath" GO111MODULE=off GOFLAGS= CGO_ENABLED=0 GOCACHE="$work/gocache"
cd "$tree"
if [ ! -f pkg/generated/openapi/zz_generated.openapi.go ]; then
  log "building openapi-gen and generating pkg/generated/openapi"
  go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  # every package that asks for OpenAPI definitions, as build/root/Makefile.generated_files finds them
  # (code-generator and sample-apiserver have their own)
  dirs=$( { grep -Rl --include='*.go' '+k8s:openapi-gen=' vendor/k8s.io; \
            grep -rl --include='*.go' '+k8s:openapi-gen=' pkg cmd plugin 2>/dev/null || true; } \
          | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
          | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, - )
  "$work/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r /dev/null -o "$GOPATH/src" 2> "$work/openapi-gen.log" \
    || { tail -20 "$work/openapi-gen.log" >&2; exit 1; }
fi
log "go build kube-apiserver $VERSION (a few minutes cold)"
ver() { for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=20 -X %s.gitTreeState=clean ' "$p" "$VERSION" "$p" "$p" "$p"; done; }
mkdir -p "$OUT"
go build -tags providerless -ldflags "-s -w $(ver)" -o "$OUT/kube-apiserver.tmp" ./cmd/kube-apiserver
mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
log "ready: $("$OUT/kube-apiserver" --version), $(etcd --version 2>/dev/null | head -n1)"
