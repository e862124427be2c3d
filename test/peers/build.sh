#!/usr/bin/env bash
# Builds the Go-built test peers (Jaeger v2, Prometheus 3 + promtool, Alertmanager + amtool) from the Go module proxy,
# at the versions pinned in test/peers/*/go.mod (+ go.sum), into a cache outside the repository, and reuses them:
#
#   $PEERS_CACHE/<name>-<version>/<binary>     PEERS_CACHE defaults to ~/.cache/mastra-task-bridge/peers
#
# Each peer is its own small Go module so their dependency graphs never meet (one module would make Go pick one
# version of the OTel collector / Prometheus libraries for all three). Builds are plain `go build` without web UIs
# (the tests use the HTTP APIs); GOMODCACHE and GOCACHE are Go's own and survive between runs on a machine, so a
# rebuild after a version bump only compiles what changed.
#
# Usage: test/peers/build.sh [--env FILE] [name...]      (names: jaeger prometheus promtool alertmanager amtool)
# Prints one `NAME_BIN=/path` line per peer on stdout (and writes them to FILE with --env); exits non-zero when a
# build fails (the lines of the peers that did build are still printed).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${PEERS_CACHE:-$HOME/.cache/mastra-task-bridge/peers}"
env_file=""
if [ "${1:-}" = "--env" ]; then
  env_file="$2"
  shift 2
fi

# name | module dir | Go module | package | env variable | build tags
# Prometheus' remove_all_sd (its own tag) leaves out the cloud service discoveries (Kubernetes, AWS, Azure, GCE, ...):
# the tests scrape static targets only, and those SDs are most of a cold build's time.
PEERS="jaeger|jaeger|github.com/jaegertracing/jaeger|github.com/jaegertracing/jaeger/cmd/jaeger|JAEGER_BIN|
prometheus|prometheus|github.com/prometheus/prometheus|github.com/prometheus/prometheus/cmd/prometheus|PROMETHEUS_BIN|remove_all_sd
promtool|prometheus|github.com/prometheus/prometheus|github.com/prometheus/prometheus/cmd/promtool|PROMTOOL_BIN|remove_all_sd
alertmanager|alertmanager|github.com/prometheus/alertmanager|github.com/prometheus/alertmanager/cmd/alertmanager|ALERTMANAGER_BIN|
amtool|alertmanager|github.com/prometheus/alertmanager|github.com/prometheus/alertmanager/cmd/amtool|AMTOOL_BIN|"

if ! command -v go >/dev/null 2>&1; then
  echo "test/peers/build.sh: go not found on PATH" >&2
  exit 2
fi

want=" $* "
rc=0
lines=()
while IFS='|' read -r name dir module pkg var tags; do
  [ "$#" -gt 0 ] && [[ "$want" != *" $name "* ]] && continue
  # The version is the one go.mod requires (the `tool` directive's module).
  version="$(awk -v m="$module" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$here/$dir/go.mod")"
  if [ -z "$version" ]; then
    echo "test/peers/build.sh: no version of $module in $dir/go.mod" >&2
    rc=1
    continue
  fi
  out="$cache/$name-$version/$name"
  if [ ! -x "$out" ]; then
    start=$(date +%s)
    echo ">>> go build $pkg@$version -> $out" >&2
    mkdir -p "$(dirname "$out")"
    # No -trimpath: the compile cache is then shared with a plain `go build`/`go tool` of the same module. -s -w: smaller
    # binary, faster link. The tmp name + mv keeps a half-written binary out of the cache (and two builds apart).
    modfile=()
    if [ "$name" = alertmanager ]; then
      # Alertmanager's ui package embeds ui/app/dist, which npm builds and the module zip does not hold. The build uses
      # a copy of the module with a placeholder page there (a `replace` in a temporary go.mod, -modfile): the binary
      # serves its API and a stub page instead of the web UI. The copy is kept next to the binaries.
      src="$cache/src/$name-$version"
      if [ ! -f "$src/ui/app/dist/elm/index.html" ]; then
        rm -rf "$src" && mkdir -p "$(dirname "$src")"
        cp -r "$(go env GOMODCACHE)/$module@$version" "$src" && chmod -R u+w "$src"
        for ui in elm mantine; do
          mkdir -p "$src/ui/app/dist/$ui"
          printf '<!doctype html><title>Alertmanager</title><p>Built without its web UI (a test peer); the API is at /api/v2/.\n' >"$src/ui/app/dist/$ui/index.html"
        done
      fi
      tmpmod="$(mktemp -d)"
      cp "$here/$dir/go.mod" "$tmpmod/go.mod" && cp "$here/$dir/go.sum" "$tmpmod/go.sum"
      printf '\nreplace %s => %s\n' "$module" "$src" >>"$tmpmod/go.mod"
      modfile=(-modfile "$tmpmod/go.mod")
    fi
    if (cd "$here/$dir" && go build -mod=readonly -tags="$tags" "${modfile[@]}" -ldflags='-s -w' -o "$out.tmp.$$" "$pkg") >&2; then
      mv "$out.tmp.$$" "$out"
      echo ">>> built $name $version in $(($(date +%s) - start)) s" >&2
    else
      rm -f "$out.tmp.$$"
      echo "!!! go build $pkg failed" >&2
      rc=1
      continue
    fi
  fi
  lines+=("$var=$out")
done <<<"$PEERS"

for l in "${lines[@]}"; do echo "$l"; done
if [ -n "$env_file" ]; then
  printf '%s\n' "${lines[@]}" >"$env_file"
fi
exit "$rc"
