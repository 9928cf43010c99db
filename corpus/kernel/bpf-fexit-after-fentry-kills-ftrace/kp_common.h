// SPDX-License-Identifier: GPL-2.0
/* A kprobe with a post_handler (so kprobes puts it on its shared IPMODIFY ftrace ops,
 * kprobe_ipmodify_ops) whose pre_handler redirects the probed function to a replacement that
 * returns -210 (-ESRCH-like marker no caller produces). */
#include <linux/module.h>
#include <linux/kprobes.h>
#include <linux/ptrace.h>

static char *sym = "security_settime64";
module_param(sym, charp, 0444);

static noinline int kp_replacement(void)
{
	return -210;
}

static int kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	instruction_pointer_set(regs, (unsigned long)kp_replacement);
	return 1;
}

static void kp_post(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
}

static struct kprobe kp = { .pre_handler = kp_pre, .post_handler = kp_post };

static int __init kp_init(void)
{
	kp.symbol_name = sym;
	return register_kprobe(&kp);
}

static void __exit kp_exit(void)
{
	unregister_kprobe(&kp);
}

module_init(kp_init);
module_exit(kp_exit);
MODULE_LICENSE("GPL");
