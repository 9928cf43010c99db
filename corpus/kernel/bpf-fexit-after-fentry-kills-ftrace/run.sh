#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# On a function with an IPMODIFY user (here a kprobe with a post_handler), a BPF fexit program
# linked after an fentry program makes the trampoline clear its ftrace_ops' func while the ops
# is registered; the next call of the function hits FTRACE_WARN_ON(!op->func) in
# arch_ftrace_ops_list_func, which calls ftrace_kill(): ftrace is dead until reboot.
#
#  1. a kprobe at security_settime64 (IPMODIFY: kprobe_ipmodify_ops);
#  2. a BPF fentry program on security_settime64: register_fentry; SELF answers 0 (the image
#     does not call the function);
#  3. a BPF fexit program on security_settime64: the image now calls the function (CALL_ORIG
#     without ORIG_STACK), so it is installed with modify_fentry ->
#     modify_ftrace_direct_multi, whose __ftrace_hash_update_ipmodify(ops, hash, hash, true)
#     (kernel/trace/ftrace.c, __modify_ftrace_direct_multi, 6.1.192 line 5813) sends
#     ENABLE_SHARE_IPMODIFY_SELF; the trampoline answers -EAGAIN, and bpf_trampoline_update
#     (kernel/bpf/trampoline.c, 6.1.192 lines 494-506) handles -EAGAIN as if the first
#     registration had failed: `tr->fops->func = NULL; tr->fops->trampoline = 0; goto again;`
#     but here the ops is registered and stays in ftrace_ops_list;
#  4. settimeofday(NULL, NULL) calls security_settime64 once.
#
# Expected: step 3 fails or shares (the kprobe's redirect keeps working: settimeofday returns -1
# errno 210), and ftrace keeps working.
# Buggy: "WARNING: ... at kernel/trace/ftrace.c:7660 arch_ftrace_ops_list_func" in the kernel
# log, settimeofday returns the original's answer (neither the kprobe nor the BPF programs ran), and
# every ftrace registration fails with -ENODEV afterwards (ftrace_kill). Reboot after the test:
# unloading the kprobe module afterwards may oops (NULL pointer in bpf_trampoline_update).
#
# Needs: root, the kernel's headers (make), bpftrace (kfunc = fentry, kretfunc = fexit), gcc.
# Seen on Debian 6.1.192 (6.1.0-57-amd64) under QEMU; 6.12.117 is not affected (its BPF side
# does not clear the registered ops' func on -EAGAIN from modify).
set -eu
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
cd "$(dirname "$0")"
[ -f kp.ko ] || make -s >/dev/null
[ -x settime ] || gcc -O2 -o settime settime.c
tmp="${TMPDIR:-/tmp}/bpf-fexit-kills-ftrace.$$"
mkdir -p "$tmp"
attach() { # $1: probe, $2: log
    bpftrace -e "$1:security_settime64 { @hits = count(); }" > "$2" 2>&1 &
    i=0
    until grep -q Attaching "$2" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "bpftrace did not attach: $(cat "$2")"; exit 2; }
        sleep 0.1
    done
    sleep 1
}
dmesg -c > /dev/null 2>&1 || true
insmod kp.ko sym=security_settime64
echo "kprobe armed:        $(./settime)"
attach kfunc "$tmp/fentry.log"
echo "+ fentry program:    $(./settime)"
attach kretfunc "$tmp/fexit.log"
echo "+ fexit program:     $(./settime)"
if dmesg | grep -q "at kernel/trace/ftrace.c.*arch_ftrace_ops_list_func"; then
    dmesg | grep -A2 "WARNING: .* at kernel/trace/ftrace.c" | head -3
    echo "BUG: a registered ftrace_ops with a NULL func was called; ftrace_kill() ran (reboot now)"
    exit 1
fi
echo "OK: no ftrace warning"
