// SPDX-License-Identifier: GPL-2.0
/* The BPF programs the real-kernel harness links: each counts its hits. One object is opened per
 * link; the loader keeps the program of the link's kind and sets its attach target. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 hits = 0;

SEC("fentry")
int BPF_PROG(ftsim_fentry)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("fexit")
int BPF_PROG(ftsim_fexit)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

/* returns 0: the traced function's own return value stands */
SEC("fmod_ret")
int BPF_PROG(ftsim_fmod_ret)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
