#!/usr/bin/env bash
# demo.sh: two p2pshare peers, "alice" and "bob", on loopback in temporary
# folders, and a walk through every command typed into their consoles.
#
# Each peer runs `p2pshare peer` (its server plus a console connected to the
# other peer). The script types commands into a console's stdin and prints
# each command before what the console printed for it, so the transcript
# reads like a session at a terminal (tables come out as TSV, because the
# console's output goes into a file here, not to a terminal).
#
# The binary is $P2PSHARE_BIN, else target/release/p2pshare of this checkout
# (under $CARGO_TARGET_DIR when set), built with `cargo build --release` when
# missing. Everything is removed and both peers are stopped on exit.
set -euo pipefail

# How long one command may take before the demo gives up.
STEP=30
# How often each peer rescans its folder and polls the other one.
RESCAN=500ms
POLL=1s

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${P2PSHARE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/p2pshare}

work=""
alice_pid=""
bob_pid=""

cleanup() {
    local status=$?
    set +e
    exec 3>&- 4>&- 2>/dev/null
    for pid in "$alice_pid" "$bob_pid"; do
        [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    [[ -n $work ]] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "demo: $*" >&2
    exit 1
}

if [[ ! -x $BIN ]]; then
    echo "demo: building $BIN (cargo build --release) ..." >&2
    (cd "$root" && cargo build --release --quiet) || die "build failed"
    [[ -x $BIN ]] || die "no binary at $BIN after the build"
fi

# A port nobody listens on right now: the kernel picks one for a socket bound
# to port 0, which is then closed again so that bob can take it.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 5<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

# Polls until `test` (a command) succeeds, up to STEP seconds.
wait_for() {
    local deadline=$((SECONDS + STEP))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# ---- the two shared folders ----------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-demo.XXXXXX")
alice=$work/alice
bob=$work/bob
mkdir -p "$alice/photos" "$bob/docs/old" "$bob/music"

printf 'Notes from alice.\nBring the slides.\n' >"$alice/notes.txt"
printf 'alice: buy milk\n' >"$alice/todo.txt"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\b\6\0\0\0\x1f\x15\xc4\x89' >"$alice/photos/cat.png"

printf 'bob: fix the bike\n' >"$bob/todo.txt"
printf 'How to use the shared folder.\n' >"$bob/docs/readme.txt"
printf 'Minutes of the January meeting.\n' >"$bob/docs/old/minutes.txt"
touch -d '2026-01-15 10:00:00 UTC' "$bob/docs/old/minutes.txt"
printf '%%PDF-1.4\n%% a tiny report\n' >"$bob/docs/report.pdf"
head -c 3000000 /dev/urandom >"$bob/music/song.ogg"

# ---- start the peers -------------------------------------------------------

# Each peer's --connect must name the other's port before it starts: alice
# takes any free port (--port 0) and says which on stderr; bob's port is
# chosen up front.
bob_port=$(free_port)
mkfifo "$work/alice.in" "$work/bob.in"

"$BIN" peer --share "$alice" --port 0 --bind 127.0.0.1 --connect "127.0.0.1:$bob_port" \
    --rescan "$RESCAN" --poll "$POLL" <"$work/alice.in" >"$work/alice.out" 2>"$work/alice.err" &
alice_pid=$!
exec 3>"$work/alice.in"
wait_for grep -q '; other peer ' "$work/alice.err" || die "alice did not start: $(cat "$work/alice.err")"
alice_addr=$(sed -n 's/.* on \([0-9.]*:[0-9]*\); other peer .*/\1/p' "$work/alice.err" | head -n 1)

# (3>&-: bob must not hold alice's input open, or alice never sees its end.)
"$BIN" peer --share "$bob" --port "$bob_port" --bind 127.0.0.1 --connect "$alice_addr" \
    --rescan "$RESCAN" --poll "$POLL" <"$work/bob.in" >"$work/bob.out" 2>"$work/bob.err" 3>&- &
bob_pid=$!
exec 4>"$work/bob.in"
wait_for grep -q '; other peer ' "$work/bob.err" || die "bob did not start: $(cat "$work/bob.err")"
wait_for grep -q 'connected to the other peer' "$work/alice.err" || die "alice never reached bob"
wait_for grep -q 'connected to the other peer' "$work/bob.err" || die "bob never reached alice"

# ---- typing into a console -------------------------------------------------

bold="" cyan="" plain=""
if [[ -t 1 ]]; then
    bold=$'\033[1m' cyan=$'\033[36m' plain=$'\033[0m'
fi

declare -A fd=([alice]=3 [bob]=4)
declare -A out_seen=([alice]=0 [bob]=0) err_seen=([alice]=0 [bob]=0)

# Prints what a peer wrote to stdout and stderr since the last call, leaving
# out the end-of-command marker (see `type_in`).
show_new() {
    local who=$1 out=$work/$1.out err=$work/$1.err size
    size=$(wc -c <"$out")
    if ((size > out_seen[$who])); then
        tail -c +$((out_seen[$who] + 1)) "$out" | head -c $((size - out_seen[$who]))
        out_seen[$who]=$size
    fi
    size=$(wc -c <"$err")
    if ((size > err_seen[$who])); then
        tail -c +$((err_seen[$who] + 1)) "$err" | head -c $((size - err_seen[$who])) |
            grep -v '^p2pshare: usage: history' || true
        err_seen[$who]=$size
    fi
}

markers() { grep -c '^p2pshare: usage: history' "$work/$1.err" || true; }
has_markers() { (($(markers "$1") >= $2)); }

# type_in WHO LINE: types LINE into WHO's console and prints it and its
# output. The console runs commands one after the other, so once a marker
# typed after LINE (`history -`, a local command that only prints its usage
# to stderr) has come out, everything LINE printed is there.
type_in() {
    local who=$1 line=$2 want
    want=$(($(markers "$who") + 1))
    show_new "$who" >/dev/null # output of the poller since the last command
    printf '\n%s%s> %s%s\n' "$bold" "$who" "$line" "$plain"
    printf '%s\nhistory -\n' "$line" >&"${fd[$who]}"
    wait_for has_markers "$who" "$want" || die "$who did not finish '$line'"
    show_new "$who"
}

say() { printf '\n%s# %s%s\n' "$cyan" "$*" "$plain"; }

# ---- the walk-through ------------------------------------------------------

say "Two peers on loopback. alice shares $alice, bob shares $bob."
sed 's/^/  /' "$work/alice.err"
sed 's/^/  /' "$work/bob.err"
err_seen[alice]=$(wc -c <"$work/alice.err")
err_seen[bob]=$(wc -c <"$work/bob.err")

say "The protocol's own help, from bob's server."
type_in alice 'HELP'
type_in alice 'HELP FileDownload'

say "What bob shares: everything, by modification time, by pattern."
type_in alice 'IndexGet longlist'
type_in alice 'IndexGet shortlist 2026-01-01 2026-01-31'
type_in alice 'IndexGet regex *.txt'
type_in alice 'IndexGet regex "docs/**"'

say "MD5 and modification time of one file, then of every file."
type_in alice 'FileHash verify docs/readme.txt'
type_in alice 'FileHash checkall'

say "Downloads land in alice's folder, checked against the md5 in the 150 line."
type_in alice 'FileDownload music/song.ogg'
type_in alice 'FileDownload TCP "docs/**"'
say "The same file again: up to date, nothing is sent."
type_in alice 'FileDownload music/song.ogg'
say "alice has a todo.txt of her own; bob's is not allowed to replace it."
type_in alice 'FileDownload todo.txt'
type_in alice 'FileDownload no-such-file.txt'

say "alice shares on what she got: bob sees it in her listing."
wait_for grep -q 'added music/song.ogg' "$work/bob.out" || die "bob never saw alice's new files"
type_in bob 'IndexGet regex "**/*.ogg"'
type_in bob 'FileDownload photos/cat.png'

say "A file appears in bob's folder, another changes, one goes away; alice's poller reports it."
printf 'Hot off the press.\n' >"$bob/news.txt"
printf 'How to use the shared folder (second edition).\n' >"$bob/docs/readme.txt"
rm "$bob/docs/report.pdf"
show_new alice >/dev/null
wait_for grep -q 'removed docs/report.pdf' "$work/alice.out" || die "alice never saw bob's changes"
wait_for grep -q 'added news.txt' "$work/alice.out" || die "alice never saw bob's news.txt"
wait_for grep -q 'changed docs/readme.txt' "$work/alice.out" || die "alice never saw bob's readme.txt change"
show_new alice

say "bob's history: requests made by bob (out) and received from alice (in), polls included."
type_in alice 'History 8'
say "alice's own history (the local command): what bob asked her (in), what she asked bob (out)."
type_in alice 'history 6'

say "End of input closes alice's console; her server keeps serving bob."
exec 3>&-
wait_for grep -q 'console closed' "$work/alice.err" || die "alice's console did not close"
show_new alice
type_in bob 'FileDownload notes.txt'
type_in bob 'NOOP'

say "Done: stopping both peers and removing $work."
