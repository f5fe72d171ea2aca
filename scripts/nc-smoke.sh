#!/usr/bin/env bash
# nc-smoke.sh: drive a real `p2pshare serve` with nothing but nc (netcat-openbsd).
#
# One control session lists the share, hashes a file, downloads a few MiB of
# random data over the data channel (a second nc sends the token line and
# captures the raw bytes), then resumes a second file from an offset on the
# same, reused data connection. Every reply code is checked, and the received
# bytes are checked with md5sum against the 150 row and the 226 line.
#
# Builds nothing: the binary is $P2PSHARE_BIN, else ./target/release/p2pshare,
# else ./target/debug/p2pshare. Prints one PASS or FAIL line; exit status 0
# only on PASS.
set -euo pipefail

# How long any single step may take before the run counts as hung.
STEP=20

BIN=${P2PSHARE_BIN:-}
if [[ -z $BIN ]]; then
    BIN=./target/release/p2pshare
    [[ -x $BIN ]] || BIN=./target/debug/p2pshare
fi

passed=0
fail_reason="unexpected error"
work=""
server_pid=""
ctl_pid=""
data_pid=""

fail() {
    fail_reason=$*
    exit 1
}

cleanup() {
    local status=$?
    set +e
    for pid in "$data_pid" "$ctl_pid" "$server_pid"; do
        [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if [[ $passed -ne 1 ]]; then
        echo "nc-smoke: FAIL: $fail_reason" >&2
        [[ -n $work && -s $work/server.err ]] && sed 's/^/  server: /' "$work/server.err" >&2
        [[ $status -eq 0 ]] && status=1
    fi
    [[ -n $work ]] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

command -v nc >/dev/null || fail "nc not found (apt-get install netcat-openbsd)"
command -v md5sum >/dev/null || fail "md5sum not found"
[[ -x $BIN ]] || fail "no p2pshare binary at $BIN (cargo build --release, or set P2PSHARE_BIN)"

work=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-nc-smoke.XXXXXX")
share=$work/share
mkdir -p "$share/docs" "$share/my docs"
printf 'hello from p2pshare\n' >"$share/hello.txt"
printf 'first line\nsecond line\n' >"$share/docs/notes.txt"
printf 'a name with a space\n' >"$share/my docs/read me.txt"
head -c $((3 * 1024 * 1024 + 123)) /dev/urandom >"$share/random.bin"
printf 'not shared\n' >"$share/.hidden"
expected_files=4

# --- start the server on a free port and read its address from stderr ----
"$BIN" serve --share "$share" --port 0 --bind 127.0.0.1 2>"$work/server.err" &
server_pid=$!
addr=""
for _ in $(seq 100); do
    line=$(grep -m1 '^p2pshare: sharing .* on ' "$work/server.err" || true)
    if [[ -n $line ]]; then
        addr=${line##* }
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
    sleep 0.1
done
[[ -n $addr ]] || fail "the server printed no 'sharing ... on ADDR' line within 10 s"
host=${addr%:*}
port=${addr##*:}

# --- the control session: nc as a coprocess, so replies can be read -----
coproc CTL { exec timeout 120 nc "$host" "$port"; }
ctl_pid=$CTL_PID
ctl_in=${CTL[1]}
ctl_out=${CTL[0]}

# Sends one request line.
send() {
    printf '%s\n' "$1" >&"$ctl_in" || fail "cannot write to the control connection"
}

# Reads one whole reply into the array REPLY_LINES; its code into REPLY_CODE.
read_reply() {
    local line
    REPLY_LINES=()
    while :; do
        local status=0
        IFS= read -r -t "$STEP" -u "$ctl_out" line || status=$?
        if ((status > 128)); then
            fail "no complete reply within ${STEP}s (got: ${REPLY_LINES[*]:-nothing})"
        elif ((status != 0)); then
            fail "the control connection closed (got: ${REPLY_LINES[*]:-nothing})"
        fi
        REPLY_LINES+=("$line")
        [[ $line =~ ^[0-9]{3}-  ]] && continue
        [[ $line =~ ^([0-9]{3})( |$) ]] || fail "not a reply line: $line"
        REPLY_CODE=${BASH_REMATCH[1]}
        return 0
    done
}

# Sends a request and checks the reply code.
expect() {
    local code=$1 request=$2
    send "$request"
    read_reply
    [[ $REPLY_CODE == "$code" ]] || fail "'$request' answered ${REPLY_LINES[*]}, wanted $code"
}

read_reply
[[ $REPLY_CODE == 220 ]] || fail "greeting was '${REPLY_LINES[*]}', wanted 220"
# The greeting ends with CR LF (read leaves the CR); the replies after it
# with LF alone.
[[ ${REPLY_LINES[0]} == *$'\r' ]] || fail "the greeting does not end with CR LF"
expect 200 "NOOP"

# longlist: header, one row per file, hidden names left out, count line.
expect 213 "IndexGet longlist"
[[ ${REPLY_LINES[0]} == $'213-name\tsize\ttimestamp\ttype' ]] || fail "bad longlist header: ${REPLY_LINES[0]}"
[[ ${REPLY_LINES[-1]} == "213 $expected_files files" ]] || fail "longlist ended '${REPLY_LINES[-1]}', wanted '213 $expected_files files'"
listing=$(printf '%s\n' "${REPLY_LINES[@]}")
for name in docs/notes.txt hello.txt "my docs/read me.txt" random.bin; do
    grep -qF "213-$name"$'\t' <<<"$listing" || fail "longlist lacks $name"
done
grep -qF '.hidden' <<<"$listing" && fail "longlist shows a hidden file"
size_listed=$(awk -F'\t' '$1 == "213-random.bin" { print $2 }' <<<"$listing")
[[ $size_listed == $(stat -c %s "$share/random.bin") ]] || fail "longlist size of random.bin is '$size_listed'"

# FileHash verify: one row whose md5 is md5sum's.
want_md5=$(md5sum <"$share/random.bin" | cut -d' ' -f1)
expect 213 "FileHash verify random.bin"
[[ ${REPLY_LINES[-1]} == "213 1 files" ]] || fail "verify ended '${REPLY_LINES[-1]}'"
IFS=$'\t' read -r v_name v_md5 _ <<<"${REPLY_LINES[1]#213-}"
[[ $v_name == random.bin && $v_md5 == "$want_md5" ]] || fail "verify row '${REPLY_LINES[1]}', wanted md5 $want_md5"

# Refusals cost a 5xx, never the session.
expect 550 "FileDownload ../etc/passwd"
expect 550 "FileHash verify .hidden"
expect 500 "frobnicate"
expect 200 "noop"

# --- download: the 150 row and DATA line, then a second nc on the data port
send "FileDownload TCP random.bin"
read_reply
[[ $REPLY_CODE == 150 && ${#REPLY_LINES[@]} -eq 2 ]] || fail "FileDownload answered '${REPLY_LINES[*]}', wanted a two-line 150"
IFS=$'\t' read -r r_name r_size _ r_md5 <<<"${REPLY_LINES[0]#150-}"
[[ $r_name == random.bin && $r_md5 == "$want_md5" ]] || fail "150 row '${REPLY_LINES[0]}'"
data_line=${REPLY_LINES[1]}
[[ $data_line =~ ^150\ DATA\ tcp\ port=([0-9]+)\ token=([0-9a-f]+)$ ]] || fail "bad DATA line: $data_line"
dport=${BASH_REMATCH[1]}
token=${BASH_REMATCH[2]}

# The data nc sends the token line and writes every byte it receives. It
# stays connected (no -N, no -q) so the next transfer reuses it; it ends
# when the server closes the data connection at QUIT. -w is only a guard
# against a hang: it ends nc after that many idle seconds.
received=$work/received.bin
printf '%s\n' "$token" | timeout 120 nc -w "$STEP" "$host" "$dport" >"$received" &
data_pid=$!

read_reply
[[ $REPLY_CODE == 226 ]] || fail "transfer ended '${REPLY_LINES[*]}', wanted 226"
[[ ${REPLY_LINES[0]} == "226 random.bin $r_size bytes md5=$want_md5" ]] || fail "bad 226 line: ${REPLY_LINES[0]}"

# Resume a second file from an offset on the same data channel: the same
# port and token, and its bytes follow on the connection already open.
offset=7
send "FileDownload tcp \"my docs/read me.txt\" $offset"
read_reply
[[ $REPLY_CODE == 150 && ${REPLY_LINES[1]} == "$data_line" ]] || fail "second download '${REPLY_LINES[*]}', wanted the same DATA line"
IFS=$'\t' read -r _ s_size _ s_md5 <<<"${REPLY_LINES[0]#150-}"
read_reply
[[ $REPLY_CODE == 226 ]] || fail "second transfer ended '${REPLY_LINES[*]}', wanted 226"

# QUIT: 221, then the server closes the control and the data connections.
expect 221 "QUIT"
exec {ctl_in}>&-
wait "$data_pid" || fail "the data nc failed or timed out"
data_pid=""
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""

# --- check the bytes ---------------------------------------------------
got_size=$(stat -c %s "$received")
want_size=$((r_size + s_size - offset))
[[ $got_size -eq $want_size ]] || fail "received $got_size bytes, wanted $r_size + $((s_size - offset))"
got_md5=$(head -c "$r_size" "$received" | md5sum | cut -d' ' -f1)
[[ $got_md5 == "$r_md5" ]] || fail "md5 of the received random.bin is $got_md5, the 150 row says $r_md5"
cmp -s <(tail -c +$((r_size + 1)) "$received") <(tail -c +$((offset + 1)) "$share/my docs/read me.txt") \
    || fail "the resumed bytes differ from the file's tail"
[[ $s_md5 == $(md5sum <"$share/my docs/read me.txt" | cut -d' ' -f1) ]] || fail "150 md5 of the second file is wrong"

passed=1
echo "nc-smoke: PASS (greeting, longlist, FileHash verify, refusals, $r_size-byte download md5 $got_md5, resume at $offset on the reused data channel)"
