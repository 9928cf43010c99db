// SPDX-License-Identifier: GPL-2.0
/* A single-ip direct user of FTSIM_SYM (6.1's register_ftrace_direct / modify_ftrace_direct /
 * unregister_ftrace_direct, as samples/ftrace/ftrace-direct-modify.c uses them), driven through
 * its parameters so that every call's errno reaches user space:
 *   ip=ADDR (at load)           the function's address (the driver reads /proc/kallsyms)
 *   echo register > ctl         register_ftrace_direct(ip, tramp1)
 *   echo modify > ctl           modify_ftrace_direct(ip, current, the other trampoline)
 *   echo unregister > ctl       unregister_ftrace_direct(ip, current)
 * Each trampoline only counts (`lock incq`, no call, no register clobbered but the flags) and
 * returns into the function: hits1 and hits2 tell which one ran. */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/ftrace.h>

static unsigned long ip;
module_param(ip, ulong, 0444);
unsigned long ftsim_direct_hits1;
unsigned long ftsim_direct_hits2;
module_param_named(hits1, ftsim_direct_hits1, ulong, 0444);
module_param_named(hits2, ftsim_direct_hits2, ulong, 0444);

extern void ftsim_tramp1(void);
extern void ftsim_tramp2(void);

#include <asm/ibt.h>
#include <asm/nospec-branch.h>

asm (
"	.pushsection    .text, \"ax\", @progbits\n"
"	.type		ftsim_tramp1, @function\n"
"	.globl		ftsim_tramp1\n"
"   ftsim_tramp1:"
	ASM_ENDBR
"	lock incq ftsim_direct_hits1(%rip)\n"
	ASM_RET
"	.size		ftsim_tramp1, .-ftsim_tramp1\n"
"	.type		ftsim_tramp2, @function\n"
"	.globl		ftsim_tramp2\n"
"   ftsim_tramp2:"
	ASM_ENDBR
"	lock incq ftsim_direct_hits2(%rip)\n"
	ASM_RET
"	.size		ftsim_tramp2, .-ftsim_tramp2\n"
"	.popsection\n"
);

static unsigned long cur;	/* the registered trampoline, 0 when not registered */

static int ctl_set(const char *val, const struct kernel_param *kp)
{
	unsigned long t1 = (unsigned long)ftsim_tramp1, t2 = (unsigned long)ftsim_tramp2;
	int ret;

	if (sysfs_streq(val, "register")) {
		ret = register_ftrace_direct(ip, t1);
		if (!ret)
			cur = t1;
	} else if (sysfs_streq(val, "modify")) {
		unsigned long next = cur == t1 ? t2 : t1;
		ret = modify_ftrace_direct(ip, cur, next);
		if (!ret)
			cur = next;
	} else if (sysfs_streq(val, "unregister")) {
		ret = unregister_ftrace_direct(ip, cur);
		if (!ret)
			cur = 0;
	} else {
		return -EINVAL;
	}
	return ret;
}

static const struct kernel_param_ops ctl_ops = { .set = ctl_set };
module_param_cb(ctl, &ctl_ops, NULL, 0200);

static int __init ftsim_direct_init(void)
{
	return ip ? 0 : -EINVAL;
}

static void __exit ftsim_direct_exit(void)
{
	if (cur)
		WARN_ON(unregister_ftrace_direct(ip, cur));
}

module_init(ftsim_direct_init);
module_exit(ftsim_direct_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("ftsim: single-ip direct user of " FTSIM_SYM);
