#!/usr/bin/env bash
# Reproduces the numbers in docs/benchmarks.md. Not run by CI.
#
#   bash .ci/bench.sh
#
# 1. Cold start: the Go benchmark BenchmarkColdStart (cmd/datapulse/bench_test.go),
#    serve start -> GET /readyz 200, on SQLite and (when configured) PostgreSQL.
# 2. Throughput: GET /api/v1/me authenticated with a personal API token under
#    wrk, on SQLite and on a throw-away PostgreSQL database: the script builds
#    the binary, starts it on a temporary data directory, bootstraps an admin,
#    creates an API token through the API, runs wrk, prints requests/s and
#    stops everything (also on failure or Ctrl-C).
#
# Needs: go, curl, wrk (Debian: apt-get install -y wrk curl); psql for the
# PostgreSQL run.
# Environment:
#   DATAPULSE_TEST_POSTGRES_URL  PostgreSQL server for the PostgreSQL runs
#                                (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable);
#                                unset: SQLite only. A database named
#                                dp_bench_<random> is created next to it and dropped.
#   BENCH_THREADS=2 BENCH_CONNECTIONS=32 BENCH_DURATION=10s   wrk settings
#   BENCH_WARMUP=2s              untimed wrk run before the measured one (0 to skip)
#   BENCH_COLDSTART=1            0 skips the Go cold-start benchmark
#   BENCH_COLDSTART_TIMES=5      -benchtime Nx of the cold-start benchmark
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null 2>&1; then
	export PATH="/usr/local/go/bin:$PATH"
fi
fail() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }
for c in go curl wrk; do
	command -v "$c" >/dev/null 2>&1 || fail "$c is not installed (Debian: apt-get install -y wrk curl; Go from go.dev)"
done

readonly THREADS="${BENCH_THREADS:-2}" CONNECTIONS="${BENCH_CONNECTIONS:-32}" DURATION="${BENCH_DURATION:-10s}"
readonly WARMUP="${BENCH_WARMUP:-2s}" PG_URL="${DATAPULSE_TEST_POSTGRES_URL:-}"

work="$(mktemp -d "${TMPDIR:-/tmp}/datapulse-bench.XXXXXX")"
pids=()
dbs=()
cleanup() {
	local pid db
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	for db in "${dbs[@]}"; do
		psql "$PG_URL" -qX -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || echo "bench: could not drop database $db" >&2
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '== machine: %s, %s CPU(s), %s; %s; wrk %s\n' "$(uname -sr)" "$(nproc)" \
	"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)" \
	"$(go version | cut -d' ' -f3-)" "$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f2)"
date -u '+== date: %Y-%m-%d %H:%M UTC'

if [ "${BENCH_COLDSTART:-1}" != 0 ]; then
	printf '\n== cold start (go test -bench ColdStart)\n'
	go test -run '^$' -bench ColdStart -benchtime "${BENCH_COLDSTART_TIMES:-5}x" ./cmd/datapulse
fi

printf '\n== building the binary\n'
go build -o "$work/datapulse" ./cmd/datapulse

# json_field NAME: the string value of "NAME" in the JSON on stdin.
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }

# run_wrk NAME DATABASE_URL: one server, one measured wrk run.
run_wrk() {
	local name="$1" url="$2" dir="$work/$1" addr="" pid email pw access token rps
	mkdir -p "$dir"
	email="loadtest@example.com"
	pw="Pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
	DATAPULSE_DATABASE_URL="$url" DATAPULSE_ADMIN_EMAIL="$email" DATAPULSE_ADMIN_PASSWORD="$pw" \
		"$work/datapulse" serve --addr 127.0.0.1:0 --data-dir "$dir/data" --log-format json 2>"$dir/server.log" &
	pid=$!
	pids+=("$pid")
	# Port 0: the kernel picks a free port; the server logs the one it got.
	for _ in $(seq 600); do
		addr="$(grep -m1 '"msg":"listening"' "$dir/server.log" | json_field addr || true)"
		[ -n "$addr" ] && break
		kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; fail "$name: the server exited during start"; }
		sleep 0.1
	done
	[ -n "$addr" ] || fail "$name: the server did not log its address within 60s"
	for _ in $(seq 600); do
		curl -fsS --max-time 2 -o /dev/null "http://$addr/readyz" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS --max-time 2 -o /dev/null "http://$addr/readyz" || fail "$name: /readyz is not 200 within 60s"

	access="$(curl -fsS --max-time 10 -H 'Content-Type: application/json' \
		-d "{\"email\":\"$email\",\"password\":\"$pw\"}" "http://$addr/api/v1/auth/login" | json_field access_token)"
	[ -n "$access" ] || fail "$name: login failed"
	token="$(curl -fsS --max-time 10 -H 'Content-Type: application/json' -H "Authorization: Bearer $access" \
		-d '{"name":"bench"}' "http://$addr/api/v1/tokens" | json_field token)"
	case "$token" in dp_*) ;; *) fail "$name: creating an API token failed" ;; esac
	curl -fsS --max-time 5 -o /dev/null -H "Authorization: Bearer $token" "http://$addr/api/v1/me" ||
		fail "$name: GET /api/v1/me with the API token failed"

	printf '\n== %s: GET /api/v1/me with an API token (wrk -t%s -c%s -d%s)\n' "$name" "$THREADS" "$CONNECTIONS" "$DURATION"
	if [ "$WARMUP" != 0 ]; then
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Authorization: Bearer $token" "http://$addr/api/v1/me" >/dev/null
	fi
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" \
		"http://$addr/api/v1/me" | tee "$dir/wrk.txt"
	rps="$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk.txt")"
	if grep -q 'Non-2xx or 3xx responses' "$dir/wrk.txt"; then
		echo "bench: WARNING: $name: some responses were not 200 (see above); the number is not comparable" >&2
	fi

	kill -TERM "$pid"
	wait "$pid" || fail "$name: the server exited with $? after SIGTERM"
	RESULTS+=("$(printf '%-10s %12s requests/s' "$name" "$rps")")
}

RESULTS=()
run_wrk sqlite ""
if [ -n "$PG_URL" ]; then
	command -v psql >/dev/null 2>&1 || fail "psql is needed for the PostgreSQL run (Debian: apt-get install -y postgresql-client)"
	db="dp_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
	psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
	dbs+=("$db")
	# Same server and options, other database: replace the URL's path.
	pg_db_url="$(printf '%s' "$PG_URL" | sed -E "s#^(postgres(ql)?://[^/?]+)(/[^?]*)?#\\1/$db#")"
	run_wrk postgres "$pg_db_url"
else
	printf '\n== postgres: skipped (DATAPULSE_TEST_POSTGRES_URL is not set)\n'
fi

printf '\n== summary: GET /api/v1/me, API token, wrk -t%s -c%s -d%s\n' "$THREADS" "$CONNECTIONS" "$DURATION"
printf '%s\n' "${RESULTS[@]}"
