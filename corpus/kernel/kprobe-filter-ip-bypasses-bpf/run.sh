#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# An IPMODIFY kprobe added to the already registered kprobe_ipmodify_ops is not announced to a
# BPF trampoline already on that function: the trampoline keeps calling the original body and
# the kprobe's redirect is lost.
#
#  1. a kprobe (with post_handler) at security_syslog: kprobes registers kprobe_ipmodify_ops
#     with the filter {security_syslog} (register_ftrace_function: the PEER check runs);
#  2. a BPF fexit program on security_settime64: the trampoline calls the original function
#     (CALL_ORIG without ORIG_STACK: no IPMODIFY user there);
#  3. a second kprobe at security_settime64: arm_kprobe_ftrace() adds the ip with
#     ftrace_set_filter_ip(&kprobe_ipmodify_ops, ...), which runs __ftrace_hash_update_ipmodify
#     but sends no ENABLE_SHARE_IPMODIFY_PEER to the trampoline's ops (only
#     register_ftrace_function runs prepare_direct_functions_for_ipmodify);
#  4. settimeofday(NULL, NULL) calls security_settime64 once.
#
# Expected (the promise of the shared design): the kprobe's pre_handler redirect takes effect
# (settimeofday returns -1 with errno 210), or step 3 fails with -EBUSY.
# Buggy: step 3 succeeds and settimeofday returns 0: the original body ran through the
# trampoline although an IPMODIFY kprobe is armed on it.
#
# Needs: root, the kernel's headers (make), bpftrace (kretfunc = fexit), gcc.
# Seen on Debian 6.1.192 (6.1.0-57-amd64) and 6.12.117 (6.12.117+deb12-amd64) under QEMU.
set -eu
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
cd "$(dirname "$0")"
[ -f kp_first.ko ] || make -s >/dev/null
[ -x settime ] || gcc -O2 -o settime settime.c
cleanup() {
    [ -n "${BT:-}" ] && kill "$BT" 2>/dev/null && wait "$BT" 2>/dev/null || true
    rmmod kp_second 2>/dev/null || true
    rmmod kp_first 2>/dev/null || true
}
trap cleanup EXIT
log="${TMPDIR:-/tmp}/kprobe-bypass-bpftrace.$$"
insmod kp_first.ko sym=security_syslog
bpftrace -e 'kretfunc:security_settime64 { @hits = count(); }' > "$log" 2>&1 &
BT=$!
i=0
until grep -q Attaching "$log" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 600 ] || { echo "bpftrace did not attach"; cat "$log"; exit 2; }
    sleep 0.1
done
sleep 1
echo "before the second kprobe: $(./settime)"
if ! insmod kp_second.ko sym=security_settime64; then
    echo "OK: the second kprobe was refused"
    exit 0
fi
out=$(./settime)
echo "with the kprobe armed:     $out"
case "$out" in
    *"errno 210"*) echo "OK: the kprobe's redirect ran"; exit 0 ;;
    *) echo "BUG: the BPF trampoline called the original security_settime64; the IPMODIFY kprobe was bypassed"; exit 1 ;;
esac
