#!/usr/bin/env bash
# Builds the Go programs pinned in tunnelwall/tools/go-tools.txt, each with
# `go install PACKAGE@VERSION` through the Go module proxy (never `direct`,
# never a prebuilt binary), into a cache outside the repository that
# outlives the worktree:
#   $TUNNELWALL_GO_CACHE (default /var/cache/tunnelwall/go)
#     bin/NAME@VERSION/NAME   the binary, with .stamp (its pin line) beside it
#     mod/, build/            GOMODCACHE and GOCACHE, so a rebuild is warm
# Idempotent: a tool whose stamp matches its pin line is skipped, so a second
# run costs a second. The Go used is $TUNNELWALL_GO, else `go` on PATH, else
# /usr/local/go/bin/go; where none is there or it is older than a tool needs,
# this says so in one line and goes on (those tools are then reported
# unsupported by `tunnelwall tools` and verify, with the command that enables
# them). Builds run one at a time, niced, with -p 1: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
PINS=${TUNNELWALL_GO_PINS:-tunnelwall/tools/go-tools.txt}
CACHE=${TUNNELWALL_GO_CACHE:-/var/cache/tunnelwall/go}
GO=${TUNNELWALL_GO:-$(command -v go || echo /usr/local/go/bin/go)}

# "1.26.8" from "go version go1.26.8 linux/amd64" (empty without a working go).
go_version=""
if [ -x "$GO" ]; then
  go_version=$("$GO" version 2>/dev/null | sed -n 's/^go version go\([0-9][0-9.]*\).*/\1/p' || true)
fi

# version_ge A B: A >= B, both dotted numbers.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }

# go with the cache's folders, the module proxy only (no `direct`: no VCS),
# GOTOOLCHAIN=local (never fetch another Go), GOFLAGS cleared (the caller's
# -mod or -buildvcs must not change a pinned build), niced.
gobuild() {
  env GOBIN="$tmp" GOMODCACHE="$CACHE/mod" GOCACHE="$CACHE/build" GOPATH="$CACHE/gopath" \
      GOPROXY=https://proxy.golang.org GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 nice -n 10 "$GO" "$@"
}

# The same build from the module's own folder: `go install PKG@VERSION`
# also asks the proxy for the module's version list (to warn of a
# deprecation), which a proxy serving only pinned versions refuses.
# `go mod download` fetches just the pinned zip (the module is the longest
# prefix of the package path it knows), then `go build` in that folder
# uses the module's own go.sum.
build_in_module() {
  local module=$package rel=. info dir
  until info=$(gobuild mod download -json "$module@$version" 2>/dev/null); do
    [ "${module%/*}" = "$module" ] && return 1
    rel="./${package#"${module%/*}"/}"
    module=${module%/*}
  done
  dir=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || return 1
  echo "setup: building $name from its module folder instead (go build $rel in $module@$version)"
  (cd "$dir" && gobuild build -p 1 -trimpath -ldflags="-s -w" "${tagflag[@]}" -o "$tmp/$name" "$rel")
}

skipped=()
failed=()
while read -r name package version min_go tags; do
  case "$name" in ''|'#'*) continue ;; esac
  dir=$CACHE/bin/$name@$version
  pin="$name $package $version $min_go $tags"
  if [ -x "$dir/$name" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$pin" ]; then
    continue
  fi
  if [ -z "$go_version" ] || ! version_ge "$go_version" "$min_go"; then
    skipped+=("$name (Go $min_go)")
    continue
  fi
  mkdir -p "$CACHE/mod" "$CACHE/build" "$CACHE/bin"
  tmp=$(mktemp -d "$CACHE/bin/.$name.XXXXXX")
  chmod 755 "$tmp"     # mktemp makes it 0700: other users run these binaries too
  trap 'rm -rf "$tmp"' EXIT
  tagflag=()
  [ "$tags" != "-" ] && tagflag=(-tags "$tags")
  echo "setup: building $name $version (go install ${tagflag[*]:+${tagflag[*]} }$package@$version)"
  start=$(date +%s)
  if ! gobuild install -p 1 -trimpath -ldflags="-s -w" "${tagflag[@]}" "$package@$version" \
     && ! build_in_module; then
    # One tool that does not build (the proxy unreachable, say) must not stop
    # the set-up of everything else: it stays unsupported, and says why.
    rm -rf "$tmp"; trap - EXIT
    failed+=("$name")
    continue
  fi
  # go install names the binary after the package's last path element
  # (Xray's is "main"): rename it to the name the tools use.
  produced=$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -1)
  [ -n "$produced" ] || { echo "setup: go install $package@$version made no binary" >&2; exit 1; }
  [ "$(basename "$produced")" = "$name" ] || mv "$produced" "$tmp/$name"
  echo "$pin" > "$tmp/.stamp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  echo "setup: built $name $version in $(( $(date +%s) - start )) s, $(du -k "$dir/$name" | cut -f1) kB"
done < "$PINS"

if [ ${#failed[@]} -gt 0 ]; then
  echo "setup: go install failed for ${failed[*]} (output above); those tools are unsupported here"
fi
if [ ${#skipped[@]} -gt 0 ]; then
  list=$(printf '%s, ' "${skipped[@]}")
  echo "setup: Go ${go_version:-not found} ($GO): not building ${list%, }; those tools are unsupported here" \
       "until TUNNELWALL_GO=/path/to/newer/go bash scripts/setup.sh"
fi
