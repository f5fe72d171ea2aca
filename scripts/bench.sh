#!/usr/bin/env bash
# bench.sh [--quick]: p2pshare side by side with the tools a user would pick
# instead (vsftpd + curl, curl against p2pshare's own FTP side, lftp, the
# rsync daemon, tftp-hpa) and with the machine's own limits (md5 hashing
# alone, dd writing alone), on the same files in one run. Prints on stdout
# a line naming the machine (cores, dd, md5sum and md5 crate speeds) and
# one markdown table: case, p2pshare, the peers, the ratio, the target and
# whether it is met; README.md's Performance section is that output.
# Progress goes to stderr.
#
# - Installs what it needs when missing (apt-get; being offline is fine when
#   the commands are there).
# - Builds the release binary (cargo build --release; honours
#   CARGO_TARGET_DIR), or takes $P2PSHARE_BIN.
# - Starts every server on 127.0.0.1 on free ports, in a temporary folder;
#   the UDP cases run in a network namespace of their own whose loopback
#   drops a share of UDP datagrams (nftables). Everything it started is
#   stopped, and the folder removed, when it ends.
# - Each timed case runs three times, interleaved with its peers, and the
#   best time counts. Ratios are p2pshare / peer from the same run.
#
# The big download is also timed from a server with a secret (its login and
# the MACs on every reply), against the same download without one.
#
# Sync (case 8) is timed against FileDownload and rsync on the same
# files: a first Sync, one with nothing to do, and large files over two
# connections against the same files one after another.
#
# The full run also measures the client's memory for a Sync --dry-run of
# a listing of 1,000,000 files, served by scripts/bigpeer.py (a fake peer
# that lists files it does not have), the HTTP side (`--http`)
# against nginx: the big file by curl (nginx with sendfile on), and the
# JSON listing of 100,000 files in one folder (nginx's autoindex JSON),
# and, as root with OpenSSH, 1 GiB and 10,000 x 4 KiB over ssh://
# against scp and rsync -e ssh through a throwaway sshd on 127.0.0.1.
#
# The full run ends with one million files (case 12, scripts/million.py):
# 1,000,000 files of 3 bytes in 1,000 folders, served with
# `serve --state` outside the tree and `--rescan 30s`. Rows: the port open
# after start (the greeting read), the index ready (`the first scan is
# done`) against `find TREE -printf '%s %T@\n'`, every md5 known against
# `find TREE -type f -print0 | xargs -0 -P2 md5sum`, the server's peak and
# current RSS once every md5 is known, a restart on the state the first
# start left (its index ready against the same find, and how many files it
# hashed again: none is the target; its port goes in the first row), and
# the server's CPU time over 60 s idle once every md5 is known (first
# round's first start). Before each timed run the page cache is dropped
# (sync; echo 3 > /proc/sys/vm/drop_caches), which needs root; without it
# the rows say "warm cache". In each round: find, md5sum, a start on a
# fresh state, the restart. $BENCH_MILLION_RUNS rounds (default 2, which
# the rows say: "best of 2"); find runs in three at least. The case takes 8
# to 13 minutes, mostly the server's own time to know every md5, plus half
# a minute to make the tree. The tree is made once and kept between runs in
# $BENCH_MILLION_DIR (default /var/tmp/p2pshare-bench-million; about
# 4 GiB and 1,001,000 inodes), with a stamp file saying it is complete:
# remove that folder when done.
#
# --only million runs that case alone, as root for the cold cache
# (`scripts/bench.sh --only million`; it still builds the binary, or takes
# $P2PSHARE_BIN), needing only python3, find, xargs and md5sum; its table
# has those rows only.
#
# --quick uses small files (64 MiB instead of 1 GiB, 1,000 small files
# instead of 10,000, ...) and finishes in under a minute once built; its
# table shows the same cases at that size, without case 12. Needs root for
# the UDP cases (network namespace); they are "not run" without it.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

QUICK=0
ONLY=""
while (($#)); do
    case $1 in
    --quick) QUICK=1 ;;
    --only)
        [[ ${2:-} == million ]] || {
            echo "bench: --only takes 'million' (the one case that runs alone)" >&2
            exit 2
        }
        ONLY=$2
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench: unknown option '$1' (use --quick, --only million or --help)" >&2
        exit 2
        ;;
    esac
    shift
done
if ((QUICK)) && [[ -n $ONLY ]]; then
    echo "bench: --only million is part of the full run, not of --quick" >&2
    exit 2
fi

if ((QUICK)); then
    BIG_MB=64 SMALL_N=1000 UDP_MB=16 HASH_MB=32 LIST_N=10000 IDLE_S=6
    SESSIONS=20 ROUNDS=10 LOAD_FILES=1000
else
    BIG_MB=1024 SMALL_N=10000 UDP_MB=200 HASH_MB=512 LIST_N=100000 IDLE_S=30
    SESSIONS=200 ROUNDS=50 LOAD_FILES=1000
fi
RUNS=3

say() { printf "bench: [%3ds] %s\n" "$SECONDS" "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# ---- what it needs ------------------------------------------------------------
declare -A wanted=(
    [vsftpd]=vsftpd [lftp]=lftp [curl]=curl [rsync]=rsync
    [in.tftpd]=tftpd-hpa [tftp]=tftp-hpa [nft]=nftables [ip]=iproute2
    [python3]=python3 [md5sum]=coreutils [dd]=coreutils [/usr/bin/time]=time
    [find]=findutils [xargs]=findutils
)
((QUICK)) || wanted[nginx]=nginx
if [[ $ONLY == million ]]; then
    wanted=([python3]=python3 [md5sum]=coreutils [find]=findutils [xargs]=findutils)
fi
missing=()
for cmd in "${!wanted[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    say "installing ${missing[*]}"
    if command -v apt-get >/dev/null 2>&1 && ((EUID == 0)); then
        export DEBIAN_FRONTEND=noninteractive
        timeout 600 apt-get update -q </dev/null >&2 || say "apt-get update failed; trying the install anyway"
        timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2 ||
            say "apt-get install failed; going on with what is there"
    else
        say "cannot install (needs apt-get and root); going on with what is there"
    fi
fi
needed=(curl python3 md5sum dd find xargs)
[[ $ONLY == million ]] && needed=(python3 md5sum find xargs)
for cmd in "${needed[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is missing and could not be installed"
done
# The interpreter itself, not a wrapper (such as pyenv's shim) that would
# run it as a child: a background helper's $! must be the process to stop.
PY=$(python3 -c 'import sys; print(sys.executable)')
have() { command -v "$1" >/dev/null 2>&1; }
# vsftpd and in.tftpd live in sbin, which a non-root PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

# ---- the binary -------------------------------------------------------------------
if [[ -n ${P2PSHARE_BIN:-} ]]; then
    BIN=$P2PSHARE_BIN
else
    say "cargo build --release"
    (cd "$root" && cargo build --release --quiet) || die "build failed"
    BIN=${CARGO_TARGET_DIR:-$root/target}/release/p2pshare
fi
[[ -x $BIN ]] || die "no binary at $BIN"
LOADGEN=$root/scripts/loadgen.py

# ---- the temporary folder and cleanup -----------------------------------------
need_mb=$(((BIG_MB * 3 + HASH_MB * 4 + UDP_MB * 3) + 1024))
[[ $ONLY == million ]] && need_mb=512 # the server's state: case 12's tree is elsewhere
work=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-bench.XXXXXX")
chmod 755 "$work" # vsftpd's and tftpd's unprivileged users must get in
avail_mb=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
PIDS=()
NETNS=""
cleanup() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    [[ -n $NETNS ]] && ip netns del "$NETNS" 2>/dev/null
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
((avail_mb > need_mb)) || die "needs about $need_mb MiB free in $work, has $avail_mb MiB"

D=$work/data # what is served
O=$work/out  # where downloads land
mkdir -p "$D" "$O"
LOG=$work/log
: >"$LOG"

# Stops one process this script started (or forgets one that has ended
# and been waited for).
stop_pid() {
    local pid=$1 i
    if kill "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
    fi
    for i in "${!PIDS[@]}"; do
        [[ ${PIDS[$i]} == "$pid" ]] && unset 'PIDS[i]'
    done
    return 0
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on TCP port $1 (of 127.0.0.1), up to 30 s.
wait_tcp() {
    local deadline=$((SECONDS + 30))
    until (exec 5<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# start_p2p VAR DIR [serve options] [-- netns]: starts `p2pshare serve` on a
# free port of 127.0.0.1, waits until it listens, and sets VAR_PID and
# VAR_PORT. With P2P_NS set, inside that network namespace.
start_p2p() {
    local var=$1 dir=$2
    shift 2
    local log=$work/$var.log
    local pre=()
    [[ -n ${P2P_NS:-} ]] && pre=(ip netns exec "$P2P_NS")
    "${pre[@]}" "$BIN" serve --share "$dir" --port 0 --bind 127.0.0.1 "$@" 2>"$log" &
    local pid=$!
    PIDS+=("$pid")
    local deadline=$((SECONDS + 300)) port=""
    while [[ -z $port ]]; do
        port=$(grep -o 'on 127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)
        kill -0 "$pid" 2>/dev/null || die "p2pshare serve --share $dir ended: $(cat "$log")"
        ((SECONDS < deadline)) || die "p2pshare serve --share $dir did not start"
        [[ -n $port ]] || sleep 0.02
    done
    printf -v "${var}_PID" '%s' "$pid"
    printf -v "${var}_PORT" '%s' "$port"
}

# p2p PORT DEST COMMAND...: the client, one -c per command.
p2p() {
    local port=$1 dest=$2
    shift 2
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    local pre=()
    [[ -n ${P2P_NS:-} ]] && pre=(ip netns exec "$P2P_NS")
    "${pre[@]}" "$BIN" client "127.0.0.1:$port" --share "$dest" "${args[@]}"
}

# p2p_secret PORT DEST COMMAND...: the client with the secret of the server
# started with --secret "$BENCH_SECRET".
p2p_secret() {
    local port=$1 dest=$2
    shift 2
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    "$BIN" client "127.0.0.1:$port" --share "$dest" --secret "$BENCH_SECRET" "${args[@]}"
}

# ---- timing -----------------------------------------------------------------
declare -A BEST
# run KEY COMMAND...: times one run of COMMAND (output thrown away) and
# keeps the best time of KEY; a failed run is logged and leaves FAIL when no
# run of KEY has succeeded.
run() {
    local key=$1
    shift
    local t0=$EPOCHREALTIME t
    if "$@" >/dev/null 2>>"$LOG"; then
        t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
        if [[ -z ${BEST[$key]:-} || ${BEST[$key]} == FAIL ]] ||
            awk -v x="$t" -v y="${BEST[$key]}" 'BEGIN { exit !(x < y) }'; then
            BEST[$key]=$t
        fi
    else
        say "  $key: failed (see below)"
        tail -3 "$LOG" >&2
        [[ -n ${BEST[$key]:-} ]] || BEST[$key]=FAIL
    fi
}

calc() { awk "BEGIN { printf \"%.2f\", $* }"; }
ok() { awk "BEGIN { exit !($*) }"; }
num() { [[ ${1:-} =~ ^[0-9.]+$ ]]; }
secs() {
    if ! num "${1:-}"; then
        printf '%s' "${1:-not run}"
    elif ok "$1 < 1"; then
        printf '%.3f s' "$1"
    else
        printf '%.2f s' "$1"
    fi
}

ROWS=()
# row CASE P2P PEERS RATIO TARGET MET
row() {
    local IFS='|'
    ROWS+=("$*")
}
# ratio_row CASE P2P_KEY PEERS_TEXT DENOM_KEY_OR_VALUE OP LIMIT
# The ratio is P2P / DENOM; met when "ratio OP LIMIT" holds.
ratio_row() {
    local case=$1 p=$2 peers=$3 d=$4 op=$5 limit=$6 ratio met
    if num "$p" && num "$d" && ok "$d > 0"; then
        ratio=$(calc "$p / $d")
        if ok "$ratio $op $limit"; then met=yes; else met=no; fi
        ratio="${ratio}x"
    else
        ratio="-" met="not run"
    fi
    row "$case" "$(secs "$p")" "$peers" "$ratio" "${op/<=/≤} ${limit}x" "$met"
}

fmt_n() { printf "%'d" "$1" 2>/dev/null || printf '%d' "$1"; }

# ---- 12. one million files (run last in the full run, or alone) --------------------
# scripts/million.py makes the tree once (kept in $M_DIR, see the header)
# and runs each server: `serve --state` outside the tree, `--rescan 30s`.
M_N=1000000 M_PER_DIR=1000 M_IDLE_S=60
M_DIR=${BENCH_MILLION_DIR:-/var/tmp/p2pshare-bench-million}
M_TREE=$M_DIR/tree
M_RUNS=${BENCH_MILLION_RUNS:-2}
[[ $M_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_MILLION_RUNS must be a count, not '$M_RUNS'"
M_NOTE=""

# Drops the page cache, the dentries and the inodes: root only.
drop_cache() {
    sync
    { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
}

# Makes the tree unless a complete one is there; says why not in M_NOTE.
million_tree() {
    local want="$M_N files of 3 bytes in $((M_N / M_PER_DIR)) folders (million.py make)"
    local t0=$SECONDS mb inodes
    mkdir -p "$M_DIR"
    if [[ -d $M_TREE && -f $M_DIR/complete && $(cat "$M_DIR/complete") == "$want" ]]; then
        say "  the tree is there from an earlier run: $M_TREE"
        return 0
    fi
    rm -f "$M_DIR/complete"
    rm -rf "$M_TREE"
    mb=$(df -Pm "$M_DIR" | awk 'NR == 2 { print $4 }')
    inodes=$(df -Pi "$M_DIR" | awk 'NR == 2 { print $4 }')
    if [[ $mb =~ ^[0-9]+$ ]] && ((mb < 5000)); then
        M_NOTE="not run (needs about 5000 MiB free in $M_DIR, has $mb MiB)"
        return 1
    fi
    if [[ $inodes =~ ^[0-9]+$ ]] && ((inodes < M_N + M_N / M_PER_DIR + 10000)); then
        M_NOTE="not run (needs $((M_N + M_N / M_PER_DIR)) free inodes in $M_DIR, has $inodes)"
        return 1
    fi
    say "  making the tree: $M_TREE"
    if ! nice -n 10 "$PY" "$root/scripts/million.py" make "$M_TREE" "$M_N" "$M_PER_DIR"; then
        M_NOTE="not run (making the tree failed)"
        return 1
    fi
    sync
    echo "$want" >"$M_DIR/complete"
    say "  the tree made in $((SECONDS - t0)) s"
}

# m_key LINE KEY: the value of KEY=... in a line of million.py serve.
m_key() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<" $1"; }

# keep_min KEY VALUE: BEST[KEY] becomes VALUE when that is a number below
# it, or FAIL when no run of KEY gave a number.
keep_min() {
    local key=$1 v=${2:-}
    if num "$v"; then
        if ! num "${BEST[$key]:-}" || ok "$v < ${BEST[$key]}"; then
            BEST[$key]=$v
        fi
    elif [[ -z ${BEST[$key]:-} ]]; then
        BEST[$key]=FAIL
    fi
}

M_HWM="" M_RSS="" M_STARTS=0 M_REHASHED="" M_IDLE=""
# m_serve first|restart STATE [IDLE_S]: one server run, from a start with the
# page cache dropped until every md5 is known (and IDLE_S more seconds).
m_serve() {
    local kind=$1 state=$2 idle=${3:-0} pid rc=0 line files hwm hashed
    if ((M_COLD)); then drop_cache || say "  could not drop the page cache"; else sync; fi
    "$PY" "$root/scripts/million.py" serve "$BIN" "$M_TREE" "$state" "$work/million.log" \
        --idle "$idle" >"$work/million.out" 2>>"$LOG" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    stop_pid "$pid"
    line=$(cat "$work/million.out")
    say "  $kind: $line"
    if ((rc != 0)); then
        say "  $kind: failed"
        tail -3 "$LOG" >&2
    fi
    files=$(m_key "$line" files)
    if [[ $files != "$M_N" ]]; then
        say "  the server counted ${files:-no} files, not $M_N"
        line=""
    fi
    hwm=$(m_key "$line" hwm_kb)
    if num "$hwm"; then
        M_STARTS=$((M_STARTS + 1))
        if [[ -z $M_HWM ]] || ((hwm > M_HWM)); then
            M_HWM=$hwm M_RSS=$(m_key "$line" rss_kb)
        fi
    fi
    if [[ $kind == first ]]; then
        keep_min m_port "$(m_key "$line" port)"
        keep_min m_scan "$(m_key "$line" scan)"
        keep_min m_md5 "$(m_key "$line" md5)"
        if ((idle > 0)); then M_IDLE=$(m_key "$line" idle_pct); fi
    else
        keep_min m_port_again "$(m_key "$line" port)"
        keep_min m_warm "$(m_key "$line" scan)"
        hashed=$(m_key "$line" hashed)
        if ! num "$hashed"; then
            M_REHASHED="?"
        elif [[ $M_REHASHED != "?" ]] && { [[ -z $M_REHASHED ]] || ((hashed > M_REHASHED)); }; then
            M_REHASHED=$hashed
        fi
    fi
}

m_xargs() { find "$M_TREE" -type f -print0 | xargs -0 -P2 md5sum; }

million_case() {
    local t0=$SECONDS pid r state=$work/million-state cache note met ratio mib label
    label="$(fmt_n "$M_N") x 3 B in $(fmt_n $((M_N / M_PER_DIR))) folders"
    say "case: $label (p2pshare serve, find -printf, xargs -P2 md5sum)"
    # Nothing else this script started runs meanwhile.
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if ! million_tree; then
        say "  $M_NOTE"
        row "$label: port, index, md5s, memory, restart, idle" "$M_NOTE" "-" "-" "see the header" "not run"
        return 0
    fi
    M_COLD=0 cache="warm cache: cannot drop the page cache"
    if drop_cache; then M_COLD=1 cache="cold cache"; fi
    note="$cache, best of $M_RUNS"
    say "  $cache; runs: find 3, md5sum and the server $M_RUNS each"
    # Each cold find and md5sum after a drop of the page cache; each server
    # from a fresh state, then again on the state it left.
    for r in $(seq "$(((M_RUNS > 3) ? M_RUNS : 3))"); do
        if ((M_COLD)); then drop_cache || say "  could not drop the page cache"; fi
        run m_find find "$M_TREE" -printf '%s %T@\n'
        say "  find: ${BEST[m_find]} s best so far"
        ((r <= M_RUNS)) || continue
        if ((M_COLD)); then drop_cache || say "  could not drop the page cache"; fi
        run m_md5sum m_xargs
        say "  xargs md5sum: ${BEST[m_md5sum]} s best so far"
        rm -rf "$state"
        mkdir -p "$state"
        m_serve first "$state" "$( ((r == 1)) && echo "$M_IDLE_S" || echo 0)"
        m_serve restart "$state"
    done
    rm -rf "$state"

    met="not run"
    if num "${BEST[m_port]:-}" && num "${BEST[m_port_again]:-}"; then
        met=no
        if ok "${BEST[m_port]} <= 1 && ${BEST[m_port_again]} <= 1"; then met=yes; fi
    fi
    row "$label: port open after start, greeting read, first start and restart ($note)" \
        "$(secs "${BEST[m_port]:-}"); restart $(secs "${BEST[m_port_again]:-}")" "-" "-" "≤ 1 s" "$met"
    ratio_row "the same: index ready (first scan done), vs find -printf ($note)" "${BEST[m_scan]}" \
        "find $(secs "${BEST[m_find]}")" "${BEST[m_find]}" "<=" 1.50
    ratio_row "the same: every md5 known, vs find -print0 into xargs -0 -P2 md5sum ($note)" "${BEST[m_md5]}" \
        "xargs md5sum $(secs "${BEST[m_md5sum]}")" "${BEST[m_md5sum]}" "<=" 1.20
    if [[ -n $M_HWM ]]; then
        mib=$(awk -v a="$M_HWM" 'BEGIN { printf "%.1f", a / 1024 }')
        met=no
        ok "$mib <= 200" && met=yes
        row "the same: server memory once every md5 is known (peak RSS since start, highest of $M_STARTS starts)" \
            "$mib MiB (now $(awk -v a="$M_RSS" 'BEGIN { printf "%.1f", a / 1024 }') MiB)" "-" "-" "≤ 200 MiB" "$met"
    else
        row "the same: server memory once every md5 is known" "failed" "-" "-" "≤ 200 MiB" "no"
    fi
    ratio="-" met="not run"
    if num "${BEST[m_warm]:-}" && num "${BEST[m_find]:-}"; then
        ratio=$(calc "${BEST[m_warm]} / ${BEST[m_find]}")
        met=no
        if ok "$ratio <= 1.50" && [[ $M_REHASHED == 0 ]]; then met=yes; fi
        ratio="${ratio}x"
    fi
    row "the same: restart on its state (md5 cache): index ready, vs find -printf; files hashed again ($note)" \
        "$(secs "${BEST[m_warm]:-}"), ${M_REHASHED:-?} hashed again" "find $(secs "${BEST[m_find]}")" "$ratio" \
        "≤ 1.50x, 0 hashed again" "$met"
    met="not run"
    if num "$M_IDLE"; then if ok "$M_IDLE < 5"; then met=yes; else met=no; fi; fi
    row "the same: idle server once every md5 is known, rescan every 30 s (CPU time over $M_IDLE_S s)" \
        "${M_IDLE:-failed}% of one core" "-" "-" "< 5%" "$met"
    say "  case 12 took $((SECONDS - t0)) s"
}

# The table, as README.md's Performance section shows it.
print_table() {
    local r c1 c2 c3 c4 c5 c6
    echo "| case | p2pshare | peers | ratio | target | met |"
    echo "| --- | --- | --- | --- | --- | --- |"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r c1 c2 c3 c4 c5 c6 <<<"$r"
        echo "| $c1 | $c2 | $c3 | $c4 | $c5 | $c6 |"
    done
}

if [[ $ONLY == million ]]; then
    million_case
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores (scripts/bench.sh --only million). Ratios are p2pshare / peer from the same run."
    echo
    print_table
    exit 0
fi

# ---- the files --------------------------------------------------------------------
# make_tree DIR COUNT SIZE PER_DIR: COUNT files of SIZE bytes (random for
# SIZE > 0, else a short text line each) in folders of PER_DIR files.
make_tree() {
    python3 - "$@" <<'EOF'
import os, sys
top, count, size, per_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(count):
    d = os.path.join(top, "d%03d" % (i // per_dir))
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(os.urandom(size) if size > 0 else b"file number %d\n" % i)
EOF
}

say "work folder $work; making the files"
mkdir -p "$D/pub" "$D/big" "$D/bigs" "$D/md5" "$D/small" "$D/list" "$D/load" "$D/hash" "$D/udp"
dd if=/dev/urandom of="$D/pub/big.bin" bs=1M count="$BIG_MB" status=none
make_tree "$D/pub/small" "$SMALL_N" 4096 100
# The p2pshare shares hold hard links of the same files, so every tool
# serves the very same bytes without a second copy on disk.
ln "$D/pub/big.bin" "$D/big/big.bin"
ln "$D/pub/big.bin" "$D/bigs/big.bin"
ln "$D/pub/big.bin" "$D/md5/big.bin"
cp -al "$D/pub/small" "$D/small/small"
make_tree "$D/list" "$LIST_N" 0 1000
make_tree "$D/load" "$LOAD_FILES" 0 100
for i in 1 2 3 4; do
    dd if=/dev/urandom of="$D/hash/h$i.bin" bs=1M count="$HASH_MB" status=none
done
dd if=/dev/urandom of="$D/udp/udp.bin" bs=1M count="$UDP_MB" status=none
head -c 100000 /dev/urandom >"$D/udp/probe.bin"
chmod -R a+rX "$D"
sync

BIG_LABEL=$( ((BIG_MB >= 1024)) && echo "$((BIG_MB / 1024)) GiB" || echo "$BIG_MB MiB")
HASH_LABEL=$( ((HASH_MB >= 1024)) && echo "$((HASH_MB / 1024)) GiB" || echo "$HASH_MB MiB")

# ---- the servers ------------------------------------------------------------------
say "starting the servers"
start_p2p BIG "$D/big"
BENCH_SECRET=$("$BIN" secret) || die "p2pshare secret failed"
start_p2p BIGS "$D/bigs" --secret "$BENCH_SECRET"
start_p2p SMALL "$D/small"
start_p2p LIST "$D/list"
start_p2p LOAD "$D/load" --max-connections $((SESSIONS + 50)) --max-per-ip $((SESSIONS + 50))
# Every share hashed before anything is timed (checkall hashes what is left).
for s in BIG SMALL LIST LOAD; do
    port_var=${s}_PORT
    p2p "${!port_var}" "$O/warm" 'FileHash checkall' >/dev/null || die "checkall on $s failed"
done
p2p_secret "$BIGS_PORT" "$O/warm" 'FileHash checkall' >/dev/null || die "checkall on BIGS failed"

FTP_PORT="" RSYNC_PORT=""
if have vsftpd; then
    FTP_PORT=$(free_port)
    pasv=$((40000 + RANDOM % 20000))
    mkdir -p /var/run/vsftpd/empty
    cat >"$work/vsftpd.conf" <<EOF
listen=YES
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=YES
anon_root=$D/pub
no_anon_password=YES
local_enable=NO
write_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
pasv_enable=YES
pasv_min_port=$pasv
pasv_max_port=$((pasv + 100))
xferlog_enable=NO
dirmessage_enable=NO
max_clients=50
EOF
    vsftpd "$work/vsftpd.conf" 2>>"$LOG" &
    PIDS+=($!)
    wait_tcp "$FTP_PORT" || { say "vsftpd did not start"; FTP_PORT=""; }
fi
if have rsync; then
    RSYNC_PORT=$(free_port)
    cat >"$work/rsyncd.conf" <<EOF
port = $RSYNC_PORT
address = 127.0.0.1
use chroot = no
uid = root
gid = root
max connections = 10
[root]
    path = $D/pub
    read only = yes
[list]
    path = $D/list
    read only = yes
EOF
    rsync --daemon --no-detach --config="$work/rsyncd.conf" 2>>"$LOG" &
    PIDS+=($!)
    wait_tcp "$RSYNC_PORT" || { say "rsync daemon did not start"; RSYNC_PORT=""; }
fi

# ---- 1. one big download, and the machine's limits --------------------------------
say "case: $BIG_LABEL download (p2pshare, vsftpd + curl, curl + md5sum, curl from p2pshare's FTP, md5 alone, dd alone)"
curl_get() { curl -s -o "$O/curl/big.bin" "ftp://127.0.0.1:$FTP_PORT/big.bin"; }
# The same curl against p2pshare's FTP side, on its control port.
curl_p2p() { curl -s -o "$O/curl/big.bin" "ftp://127.0.0.1:$BIG_PORT/big.bin"; }
curl_md5() { curl_get && md5sum "$O/curl/big.bin"; }
md5_alone() {
    # A fresh server with an empty md5 cache: `FileHash verify` hashes the
    # file (the md5 crate, 1 MiB reads from the page cache) and nothing else.
    rm -rf "$D/md5/.p2pshare"
    start_p2p MD5 "$D/md5"
    run md5 p2p "$MD5_PORT" "$O/warm" 'FileHash verify big.bin'
    stop_pid "$MD5_PID"
}
mkdir -p "$O/p2p" "$O/p2ps" "$O/curl"
big_plain() {
    rm -f "$O/p2p/big.bin" "$O/p2ps/big.bin" && sync
    run big_p2p p2p "$BIG_PORT" "$O/p2p" 'FileDownload big.bin'
}
big_with_secret() {
    rm -f "$O/p2p/big.bin" "$O/p2ps/big.bin" && sync
    run big_secret p2p_secret "$BIGS_PORT" "$O/p2ps" 'FileDownload big.bin'
}
for r in $(seq $RUNS); do
    # With and without a secret in turn, each first every other run.
    if ((r % 2)); then
        big_plain
        big_with_secret
    else
        big_with_secret
        big_plain
    fi
    rm -f "$O/p2p/big.bin" "$O/p2ps/big.bin" && sync
    if [[ -n $FTP_PORT ]]; then
        rm -f "$O/curl/big.bin" && sync
        run big_curl curl_get
        rm -f "$O/curl/big.bin" && sync
        run big_curl_md5 curl_md5
    fi
    rm -f "$O/curl/big.bin" && sync
    run big_ftp curl_p2p
    rm -f "$O/curl/big.bin" "$O/p2p/big.bin" && sync
    run big_dd dd if="$D/pub/big.bin" of="$O/dd.bin" bs=1M
    rm -f "$O/dd.bin" && sync
    run big_md5sum md5sum "$D/pub/big.bin"
    md5_alone
done
rm -rf "$O/p2p" "$O/p2ps" "$O/curl"
ratio_row "$BIG_LABEL download to disk, md5-verified, vs vsftpd + curl (unverified)" \
    "${BEST[big_p2p]}" "curl $(secs "${BEST[big_curl]:-}"); curl + md5sum $(secs "${BEST[big_curl_md5]:-}")" \
    "${BEST[big_curl]:-}" "<=" 0.75
ratio_row "$BIG_LABEL download with a secret (login, a MAC on every reply) vs the same without" \
    "${BEST[big_secret]:-}" "without $(secs "${BEST[big_p2p]:-}")" "${BEST[big_p2p]:-}" "<=" 1.02
ratio_row "$BIG_LABEL by curl: p2pshare FTP vs vsftpd" \
    "${BEST[big_ftp]:-}" "vsftpd $(secs "${BEST[big_curl]:-}")" "${BEST[big_curl]:-}" "<=" 1.10
slower=""
if num "${BEST[md5]:-}" && num "${BEST[big_dd]:-}"; then
    slower=$(awk -v a="${BEST[md5]}" -v b="${BEST[big_dd]}" 'BEGIN { print (a > b ? a : b) }')
fi
ratio_row "the same vs the machine: md5 crate alone, dd writing alone (ratio to the slower)" \
    "${BEST[big_p2p]}" "md5 $(secs "${BEST[md5]:-}"); dd $(secs "${BEST[big_dd]}")" "$slower" "<=" 1.20

# ---- 2. many small files ----------------------------------------------------------
N_LABEL="$(fmt_n "$SMALL_N") x 4 KiB"
say "case: $N_LABEL (p2pshare, rsync daemon, lftp mirror)"
# Every run writes into a folder of its own, and nothing is removed until
# the case is over: on ext4, files made right after many were removed are
# slow to create for a while (the allocator passes over recently freed
# inodes), which would punish whichever tool comes next.
for r in $(seq $RUNS); do
    sync
    run small_p2p p2p "$SMALL_PORT" "$O/p2p$r" 'FileDownload "small/**/*"'
    if [[ -n $RSYNC_PORT ]]; then
        mkdir -p "$O/rsync$r" && sync
        run small_rsync rsync -a "rsync://127.0.0.1:$RSYNC_PORT/root/small/" "$O/rsync$r/"
    fi
    if [[ -n $FTP_PORT ]] && have lftp; then
        sync
        run small_lftp lftp -e "set ftp:ssl-allow no; set net:max-retries 2; mirror small $O/lftp$r; quit" \
            "ftp://127.0.0.1:$FTP_PORT"
    fi
done
got=$(find "$O/p2p1/small" -type f 2>/dev/null | wc -l || true)
((got == SMALL_N)) || { say "p2pshare downloaded $got of $SMALL_N small files"; BEST[small_p2p]=FAIL; }
rm -rf "$O"/p2p? "$O"/rsync? "$O"/lftp?
ratio_row "$N_LABEL, FileDownload \"small/**/*\", vs rsync daemon" \
    "${BEST[small_p2p]}" "rsync $(secs "${BEST[small_rsync]:-}")" "${BEST[small_rsync]:-}" "<=" 1.00
ratio_row "the same vs lftp mirror (at least 3x faster)" \
    "${BEST[small_p2p]}" "lftp $(secs "${BEST[small_lftp]:-}")" "${BEST[small_lftp]:-}" "<=" 0.33

# ---- 3. UDP under loss, in a network namespace ----------------------------------------
UDP_LABEL="UDP $UDP_MB MiB"
udp_note=""
if ((EUID != 0)) || ! have ip || ! have nft; then
    udp_note="not run (needs root, ip and nft)"
else
    NETNS=p2pbench$$
    if ip netns add "$NETNS" 2>>"$LOG" && ip netns exec "$NETNS" ip link set lo up &&
        ip netns exec "$NETNS" nft add table inet loss &&
        ip netns exec "$NETNS" nft 'add chain inet loss in { type filter hook input priority 0; }'; then
        :
    else
        udp_note="not run (cannot make a network namespace with nftables)"
    fi
fi
set_loss() {
    ip netns exec "$NETNS" nft flush chain inet loss in
    if (($1 > 0)); then
        ip netns exec "$NETNS" nft "add rule inet loss in meta l4proto udp numgen random mod 100 < $1 drop"
    fi
}
if [[ -z $udp_note ]]; then
    say "case: $UDP_LABEL at 0/1/10% loss (p2pshare UDP, p2pshare TCP, tftp-hpa)"
    P2P_NS=$NETNS start_p2p UDPS "$D/udp"
    P2P_NS=$NETNS p2p "$UDPS_PORT" "$O/warm" 'FileHash checkall' >/dev/null
    mkdir -p "$O/udp"
    if ! ip netns exec "$NETNS" timeout 60 "$BIN" client "127.0.0.1:$UDPS_PORT" --share "$O/udp" \
        -c 'FileDownload UDP probe.bin' >>"$LOG" 2>&1 ||
        ! cmp -s "$O/udp/probe.bin" "$D/udp/probe.bin"; then
        udp_note="not run (the client's FileDownload UDP failed: $(tail -1 "$LOG"))"
    fi
fi
if [[ -z $udp_note ]]; then
    TFTP_PORT=""
    if have in.tftpd && have tftp; then
        TFTP_PORT=$(free_port)
        ip netns exec "$NETNS" in.tftpd -L -4 -s -a ":$TFTP_PORT" "$D/udp" 2>>"$LOG" &
        PIDS+=($!)
        sleep 0.3
    fi
    udp_get() { # KEY TRANSPORT
        rm -f "$O/udp/udp.bin" && sync
        run "$1" ip netns exec "$NETNS" timeout 600 "$BIN" client "127.0.0.1:$UDPS_PORT" --share "$O/udp" \
            -c "FileDownload $2 udp.bin"
        cmp -s "$O/udp/udp.bin" "$D/udp/udp.bin" || { say "  $1: the file is not exact"; BEST[$1]=FAIL; }
    }
    for r in $(seq $RUNS); do
        set_loss 0
        udp_get udp0 UDP
        udp_get tcp0 TCP
        if [[ -n $TFTP_PORT ]]; then
            rm -f "$O/udp/tftp.bin" && sync
            run tftp0 ip netns exec "$NETNS" timeout 600 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c get udp.bin "$O/udp/tftp.bin"
        fi
        set_loss 1
        udp_get udp1 UDP
        set_loss 10
        udp_get udp10 UDP
    done
    set_loss 0
    rm -rf "$O/udp"
    ratio_row "$UDP_LABEL, no loss, vs p2pshare TCP (netns)" "${BEST[udp0]}" \
        "TCP $(secs "${BEST[tcp0]}")" "${BEST[tcp0]}" "<=" 1.50
    ratio_row "$UDP_LABEL, no loss, vs tftp-hpa (at least 10x faster)" "${BEST[udp0]}" \
        "tftp-hpa $(secs "${BEST[tftp0]:-}")" "${BEST[tftp0]:-}" "<=" 0.10
    # Throughput kept under loss: no-loss time / lossy time.
    for loss in 1 10; do
        limit=$( ((loss == 1)) && echo 0.70 || echo 0.40)
        kept="-" met="not run"
        if num "${BEST[udp$loss]}" && num "${BEST[udp0]}"; then
            kept=$(calc "${BEST[udp0]} / ${BEST[udp$loss]}")
            if ok "$kept >= $limit"; then met=yes; else met=no; fi
            kept="${kept}x"
        fi
        row "$UDP_LABEL, $loss% loss: throughput kept vs no loss" "$(secs "${BEST[udp$loss]}")" \
            "UDP no loss $(secs "${BEST[udp0]}")" "$kept" "≥ ${limit}x" "$met"
    done
else
    say "UDP cases: $udp_note"
    row "$UDP_LABEL at 0%, 1%, 10% loss vs TCP and tftp-hpa" "$udp_note" "-" "-" "see issue 4" "not run"
fi
if [[ -n $NETNS ]]; then
    for pid in ${UDPS_PID:-}; do stop_pid "$pid"; done
fi

# ---- 4. checkall on unchanged files -------------------------------------------------
say "case: FileHash checkall on $(fmt_n "$SMALL_N") unchanged files"
for r in $(seq $RUNS); do
    run checkall p2p "$SMALL_PORT" "$O/warm" 'FileHash checkall'
done
c=${BEST[checkall]}
met="not run"
if num "$c"; then if ok "$c <= 0.25"; then met=yes; else met=no; fi; fi
row "FileHash checkall, $(fmt_n "$SMALL_N") unchanged files" "$(secs "$c")" "-" "-" "≤ 0.25 s" "$met"

# ---- 5. first hashing ---------------------------------------------------------------
say "case: first hashing of 4 x $HASH_LABEL (p2pshare until checkall is ready, md5sum)"
first_hash() {
    # From the server's start with an empty md5 cache until a checkall
    # answers with every md5.
    rm -rf "$D/hash/.p2pshare"
    start_p2p HASH "$D/hash"
    local rows
    rows=$(p2p "$HASH_PORT" "$O/warm" 'FileHash checkall' | grep -c '\.bin')
    stop_pid "$HASH_PID"
    [[ $rows == 4 ]]
}
for r in $(seq $RUNS); do
    run hash_p2p first_hash
    run hash_md5sum md5sum "$D/hash/h1.bin" "$D/hash/h2.bin" "$D/hash/h3.bin" "$D/hash/h4.bin"
done
ratio_row "first hashing of 4 x $HASH_LABEL until checkall is ready, vs md5sum" "${BEST[hash_p2p]}" \
    "md5sum $(secs "${BEST[hash_md5sum]}")" "${BEST[hash_md5sum]}" "<=" 0.60

# ---- 6. idle, then the big listing ---------------------------------------------------
say "case: idle server with $(fmt_n "$LIST_N") files for ${IDLE_S}s (rescan every 5 s)"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
sleep 1
t0=$(ticks "$LIST_PID") s0=$EPOCHREALTIME
sleep "$IDLE_S"
t1=$(ticks "$LIST_PID")
idle=$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$EPOCHREALTIME" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }')
met=no
ok "$idle < 5" && met=yes
row "idle server sharing $(fmt_n "$LIST_N") files, rescan every 5 s" "${idle}% of one core" "-" "-" "< 5%" "$met"

say "case: IndexGet longlist of $(fmt_n "$LIST_N") files (p2pshare, rsync --list-only -r)"
for r in $(seq $RUNS); do
    run list_p2p p2p "$LIST_PORT" "$O/warm" 'IndexGet longlist'
    if [[ -n $RSYNC_PORT ]]; then
        run list_rsync rsync --list-only -r "rsync://127.0.0.1:$RSYNC_PORT/list/"
    fi
done
rows=$(p2p "$LIST_PORT" "$O/warm" 'IndexGet longlist' | wc -l)
((rows == LIST_N + 1)) || { say "longlist gave $((rows - 1)) rows, not $LIST_N"; BEST[list_p2p]=FAIL; }
ratio_row "IndexGet longlist of $(fmt_n "$LIST_N") files, vs rsync --list-only -r" "${BEST[list_p2p]}" \
    "rsync $(secs "${BEST[list_rsync]:-}")" "${BEST[list_rsync]:-}" "<=" 0.50
hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$LIST_PID/status")
rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$LIST_PID/status")
met=no
ok "$hwm <= 64" && met=yes
row "server memory sharing $(fmt_n "$LIST_N") files (peak RSS since start)" "$hwm MiB (now $rss MiB)" "-" "-" "≤ 64 MiB" "$met"

# ---- 7. many sessions at once ---------------------------------------------------------
say "case: $SESSIONS sessions x $ROUNDS x (longlist of $(fmt_n "$LOAD_FILES") + verify)"
best_rps="" best_line="" load_errors=0
for r in $(seq $RUNS); do
    line=$(python3 "$LOADGEN" --port "$LOAD_PORT" --sessions "$SESSIONS" --rounds "$ROUNDS" \
        --verify d000/f00000.txt --rows "$LOAD_FILES" 2>>"$LOG") || true
    say "  $line"
    rps=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$line")
    errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
    [[ -n $errs ]] || errs=1
    load_errors=$((load_errors + errs))
    if num "$rps" && { [[ -z $best_rps ]] || ok "$rps > $best_rps"; }; then
        best_rps=$rps best_line=$line
    fi
done
if [[ -n $best_line ]]; then
    p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$best_line")
    met=no
    ((load_errors == 0)) && met=yes
    row "$SESSIONS concurrent sessions x $ROUNDS x (longlist of $(fmt_n "$LOAD_FILES") + verify)" \
        "$best_rps req/s, p99 $p99 ms, $load_errors errors" "-" "-" "no error" "$met"
else
    row "$SESSIONS concurrent sessions x $ROUNDS x (longlist + verify)" "failed" "-" "-" "no error" "no"
fi

# ---- 8. Sync ---------------------------------------------------------------------------
say "case: Sync of $N_LABEL (first, then with nothing to do), 4 x $HASH_LABEL (two connections)"
# Every first Sync writes into a folder of its own (see case 2).
for r in $(seq $RUNS); do
    sync
    run sync_first p2p "$SMALL_PORT" "$O/sync$r" 'Sync'
    sync
    run sync_dl p2p "$SMALL_PORT" "$O/dl$r" 'FileDownload "**"'
    if [[ -n $RSYNC_PORT ]]; then
        mkdir -p "$O/rsyncs$r" && sync
        run sync_rsync rsync -a "rsync://127.0.0.1:$RSYNC_PORT/root/small/" "$O/rsyncs$r/"
    fi
done
got=$(find "$O/sync1/small" -type f 2>/dev/null | wc -l || true)
((got == SMALL_N)) || { say "Sync brought $got of $SMALL_N small files"; BEST[sync_first]=FAIL; }
for r in $(seq $RUNS); do
    run sync_noop p2p "$SMALL_PORT" "$O/sync1" 'Sync'
done
rm -rf "$O"/sync? "$O"/dl? "$O"/rsyncs?
ratio_row "first Sync of $N_LABEL, vs FileDownload \"**\" (same run)" "${BEST[sync_first]}" \
    "FileDownload $(secs "${BEST[sync_dl]}"); rsync $(secs "${BEST[sync_rsync]:-}")" "${BEST[sync_dl]}" "<=" 1.00
ratio_row "the same vs rsync daemon" "${BEST[sync_first]}" \
    "rsync $(secs "${BEST[sync_rsync]:-}")" "${BEST[sync_rsync]:-}" "<=" 1.00
c=${BEST[sync_noop]}
met="not run"
if num "$c"; then if ok "$c <= 1.00"; then met=yes; else met=no; fi; fi
row "Sync with nothing to do, $(fmt_n "$SMALL_N") files (one checkall round trip)" "$(secs "$c")" "-" "-" "≤ 1.00 s" "$met"
start_p2p SYNCH "$D/hash"
p2p "$SYNCH_PORT" "$O/warm" 'FileHash checkall' >/dev/null || die "checkall on the hash share failed"
for r in $(seq $RUNS); do
    rm -rf "$O/syncp" "$O/seq" && sync
    run sync_par p2p "$SYNCH_PORT" "$O/syncp" 'Sync'
    rm -rf "$O/syncp" && sync
    run sync_seq p2p "$SYNCH_PORT" "$O/seq" 'FileDownload "*.bin"'
done
rm -rf "$O/syncp" "$O/seq"
stop_pid "$SYNCH_PID"
ratio_row "first Sync of 4 x $HASH_LABEL (two connections), vs FileDownload one after another" "${BEST[sync_par]}" \
    "one after another $(secs "${BEST[sync_seq]}")" "${BEST[sync_seq]}" "<=" 0.60

# ---- 9. client memory for a huge listing ------------------------------------------------
# A fake peer (scripts/bigpeer.py) lists SYNC_MEM_N files it does not
# have; the client's peak RSS for `Sync --dry-run` into an empty share,
# less its peak for a NOOP, per file. Full run only.
if ((!QUICK)) && [[ -x /usr/bin/time ]]; then
    SYNC_MEM_N=1000000
    say "case: client memory for Sync --dry-run of $(fmt_n "$SYNC_MEM_N") listed files"
    "$PY" "$root/scripts/bigpeer.py" "$SYNC_MEM_N" >"$work/bigpeer.port" 2>>"$LOG" &
    BIGPEER_PID=$!
    PIDS+=("$BIGPEER_PID")
    for _ in $(seq 600); do [[ -s $work/bigpeer.port ]] && break; sleep 0.1; done
    BIGPEER_PORT=$(cat "$work/bigpeer.port" 2>/dev/null || true)
    # The peak RSS (KiB) of one client run (GNU time: a shell's or
    # python's own getrusage would count the forked copy of itself).
    peak_kb() {
        /usr/bin/time -f %M -o "$work/peak" "$BIN" client "127.0.0.1:$BIGPEER_PORT" \
            --share "$O/bigsync" -c "$1" >/dev/null 2>>"$LOG" && cat "$work/peak"
    }
    mkdir -p "$O/bigsync"
    base_kb=$(peak_kb NOOP || true)
    sync_kb=$(peak_kb 'Sync --dry-run' || true)
    stop_pid "$BIGPEER_PID"
    if num "$base_kb" && num "$sync_kb"; then
        per=$(awk -v a="$base_kb" -v b="$sync_kb" -v n="$SYNC_MEM_N" 'BEGIN { printf "%d", (b - a) * 1024 / n }')
        met=no
        ((per <= 300)) && met=yes
        row "client memory, Sync --dry-run of $(fmt_n "$SYNC_MEM_N") listed files (peak RSS less a NOOP's)" \
            "$per bytes a file ($((sync_kb / 1024)) MiB peak)" "-" "-" "≤ 300 bytes a file" "$met"
    else
        row "client memory, Sync --dry-run of $(fmt_n "$SYNC_MEM_N") listed files" "failed" "-" "-" "≤ 300 bytes a file" "no"
    fi
    rm -rf "$O/bigsync"
elif ((!QUICK)); then
    row "client memory, Sync --dry-run of 1,000,000 listed files" "not run (no /usr/bin/time)" "-" "-" "≤ 300 bytes a file" "not run"
fi

# ---- 10. the HTTP side against nginx (full run only) -----------------------------------
if ((!QUICK)); then
    say "case: HTTP: $BIG_LABEL by curl and a JSON listing of $(fmt_n "$LIST_N") files (p2pshare --http, nginx)"
    mkdir -p "$D/flat" "$work/nginx"
    python3 - "$D/flat" "$LIST_N" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "f%06d.txt" % i), "w") as f:
        f.write("%d\n" % i)
PY
    chmod -R a+rX "$D/flat"
    HTTP_BIG=$(free_port)
    start_p2p HBIG "$D/big" --http "127.0.0.1:$HTTP_BIG"
    HTTP_LIST=$(free_port)
    start_p2p HLIST "$D/flat" --http "127.0.0.1:$HTTP_LIST"
    NGINX_PORT=""
    if have nginx; then
        NGINX_PORT=$(free_port)
        cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
user root;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /pub/ { alias $D/pub/; }
        location /flat/ { alias $D/flat/; autoindex on; autoindex_format json; }
    }
}
CONF
        nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>>"$LOG" &
        PIDS+=($!)
        wait_tcp "$NGINX_PORT" || { say "nginx did not start"; NGINX_PORT=""; }
    fi
    # The big file's md5 hashed, and each listing read once, before
    # anything is timed.
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_BIG/big.bin" || say "p2pshare's HTTP side did not answer"
    mkdir -p "$O/http"
    http_json() { curl -sf -o "$O/http/list.json" "http://127.0.0.1:$HTTP_LIST/?format=json"; }
    nginx_json() { curl -sf -o "$O/http/list.json" "http://127.0.0.1:$NGINX_PORT/flat/"; }
    for r in $(seq $RUNS); do
        rm -f "$O/http/big.bin" && sync
        run http_big curl -sf -o "$O/http/big.bin" "http://127.0.0.1:$HTTP_BIG/big.bin"
        if [[ -n $NGINX_PORT ]]; then
            rm -f "$O/http/big.bin" && sync
            run nginx_big curl -sf -o "$O/http/big.bin" "http://127.0.0.1:$NGINX_PORT/pub/big.bin"
        fi
        run http_list http_json
        if [[ -n $NGINX_PORT ]]; then run nginx_list nginx_json; fi
    done
    entries=0
    http_json && entries=$(grep -o '"name":' "$O/http/list.json" | wc -l)
    ((entries == LIST_N)) || { say "the JSON listing gave $entries files, not $LIST_N"; BEST[http_list]=FAIL; }
    rm -rf "$O/http"
    ratio_row "$BIG_LABEL by curl: p2pshare --http vs nginx (sendfile on)" "${BEST[http_big]}" \
        "nginx $(secs "${BEST[nginx_big]:-}")" "${BEST[nginx_big]:-}" "<=" 1.10
    ratio_row "JSON listing of $(fmt_n "$LIST_N") files in one folder: p2pshare --http vs nginx autoindex" \
        "${BEST[http_list]}" "nginx $(secs "${BEST[nginx_list]:-}")" "${BEST[nginx_list]:-}" "<=" 1.00
    stop_pid "$HBIG_PID"
    stop_pid "$HLIST_PID"
fi

# ---- 11. over ssh ------------------------------------------------------------------------
# A throwaway sshd on 127.0.0.1 (its own host key and user key, the host
# key pinned, as the tests make it): p2pshare over ssh:// against scp and
# rsync -e ssh on the same big file, and Sync over ssh:// against
# rsync -a -e ssh on the small files. Full run only; needs root, sshd,
# ssh, scp, ssh-keygen and rsync.
if ((!QUICK)) && ((EUID == 0)) && [[ -x /usr/sbin/sshd ]] && have ssh && have scp && have ssh-keygen && have rsync; then
    say "case: $BIG_LABEL and $N_LABEL over ssh (p2pshare ssh://, scp, rsync -e ssh)"
    S=$work/sshd
    mkdir -p "$S" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$S/user_key"
    cp "$S/user_key.pub" "$S/authorized_keys"
    SSHD_PORT=$(free_port)
    cat >"$S/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $S/host_key
AuthorizedKeysFile $S/authorized_keys
PidFile $S/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
Subsystem sftp internal-sftp
EOF
    echo "p2pshare-bench $(cat "$S/host_key.pub")" >"$S/known_hosts"
    /usr/sbin/sshd -D -e -f "$S/sshd_config" 2>>"$LOG" &
    PIDS+=($!)
    SSH_OPTS="-F none -i $S/user_key -o IdentitiesOnly=yes -o UserKnownHostsFile=$S/known_hosts -o HostKeyAlias=p2pshare-bench -o StrictHostKeyChecking=yes -o BatchMode=yes"
    me=$(id -un)
    if wait_tcp "$SSHD_PORT"; then
        # p2p_ssh SHARE DEST COMMAND: the client through ssh://.
        p2p_ssh() {
            P2PSHARE_SSH="ssh $SSH_OPTS" "$BIN" client "ssh://$me@127.0.0.1:$SSHD_PORT$1" \
                --share "$2" --remote-command "$BIN" -c "$3"
        }
        # shellcheck disable=SC2086 # the options are words
        scp_get() { scp -q $SSH_OPTS -P "$SSHD_PORT" "$me@127.0.0.1:$D/pub/big.bin" "$O/scp/big.bin"; }
        rsync_ssh() { rsync -a -e "ssh $SSH_OPTS -p $SSHD_PORT" "$me@127.0.0.1:$1" "$2"; }
        mkdir -p "$O/sshp" "$O/scp" "$O/rsynce"
        for r in $(seq $RUNS); do
            rm -f "$O/sshp/big.bin" && sync
            run ssh_big_p2p p2p_ssh "$D/big" "$O/sshp" 'FileDownload big.bin'
            rm -f "$O/scp/big.bin" && sync
            run ssh_big_scp scp_get
            rm -f "$O/rsynce/big.bin" && sync
            run ssh_big_rsync rsync_ssh "$D/pub/big.bin" "$O/rsynce/big.bin"
        done
        rm -rf "$O/sshp" "$O/scp" "$O/rsynce"
        faster=""
        if num "${BEST[ssh_big_scp]:-}" && num "${BEST[ssh_big_rsync]:-}"; then
            faster=$(awk -v a="${BEST[ssh_big_scp]}" -v b="${BEST[ssh_big_rsync]}" 'BEGIN { print (a < b ? a : b) }')
        fi
        ratio_row "$BIG_LABEL over ssh://, md5-verified, vs scp and rsync -e ssh (ratio to the faster)" \
            "${BEST[ssh_big_p2p]:-}" "scp $(secs "${BEST[ssh_big_scp]:-}"); rsync -e ssh $(secs "${BEST[ssh_big_rsync]:-}")" \
            "$faster" "<=" 1.10
        for r in $(seq $RUNS); do
            sync
            run ssh_sync_p2p p2p_ssh "$D/small" "$O/sshsync$r" 'Sync'
            mkdir -p "$O/rsyncsshs$r" && sync
            run ssh_sync_rsync rsync_ssh "$D/pub/small/" "$O/rsyncsshs$r/"
        done
        got=$(find "$O/sshsync1/small" -type f 2>/dev/null | wc -l || true)
        ((got == SMALL_N)) || { say "Sync over ssh brought $got of $SMALL_N small files"; BEST[ssh_sync_p2p]=FAIL; }
        rm -rf "$O"/sshsync? "$O"/rsyncsshs?
        ratio_row "first Sync of $N_LABEL over ssh://, vs rsync -a -e ssh" "${BEST[ssh_sync_p2p]:-}" \
            "rsync -e ssh $(secs "${BEST[ssh_sync_rsync]:-}")" "${BEST[ssh_sync_rsync]:-}" "<=" 1.00
    else
        say "sshd did not start"
        row "$BIG_LABEL and $N_LABEL over ssh:// vs scp and rsync -e ssh" "not run (sshd did not start)" "-" "-" "≤ 1.10x, ≤ 1.00x" "not run"
    fi
elif ((!QUICK)); then
    row "$BIG_LABEL and $N_LABEL over ssh:// vs scp and rsync -e ssh" "not run (needs root, sshd, ssh, scp, rsync)" "-" "-" "≤ 1.10x, ≤ 1.00x" "not run"
fi

# ---- 12. one million files -------------------------------------------------------------
if ((!QUICK)); then
    million_case
fi

# ---- the machine and the table ---------------------------------------------------------
mbps() { if num "$2"; then calc "$1 / $2"; else echo "?"; fi; }
machine="$(nproc) cores; dd writing $(mbps "$BIG_MB" "${BEST[big_dd]}") MiB/s; md5sum $(mbps "$BIG_MB" "${BEST[big_md5sum]}") MiB/s; md5 crate $(mbps "$BIG_MB" "${BEST[md5]:-}") MiB/s ($BIG_LABEL, best of $RUNS)"
say "machine: $machine"
# The machine line and the table are what README.md's Performance section
# shows, as they are.
echo "Measured $(date -u +%Y-%m-%d) on $machine. Ratios are p2pshare / peer from the same run."
echo
print_table
