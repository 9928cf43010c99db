// SPDX-License-Identifier: GPL-2.0
/* One kprobe at FTSIM_SYM with a post_handler, so that kprobes puts it on its shared IPMODIFY
 * ftrace ops (kernel/kprobes.c: kprobe_ipmodify_ops when p->post_handler is set). Its
 * pre_handler redirects the call to a replacement returning the marker -210. Several of these
 * modules at one address aggregate (only the first arms ftrace). */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/ptrace.h>

static noinline int ftsim_kp_replacement(void)
{
	return -210;
}

static int ftsim_pre(struct kprobe *p, struct pt_regs *regs)
{
	instruction_pointer_set(regs, (unsigned long)ftsim_kp_replacement);
	return 1; /* regs->ip changed: skip the single-step and the post_handler */
}

static void ftsim_post(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
}

static struct kprobe kp = {
	.symbol_name = FTSIM_SYM,
	.pre_handler = ftsim_pre,
	.post_handler = ftsim_post,
};

static int ftsim_kp_init(void)
{
	return register_kprobe(&kp);
}

static void ftsim_kp_exit(void)
{
	unregister_kprobe(&kp);
}

module_init(ftsim_kp_init);
module_exit(ftsim_kp_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("ftsim: IPMODIFY kprobe at " FTSIM_SYM);
