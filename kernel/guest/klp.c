// SPDX-License-Identifier: GPL-2.0
/* One livepatch of one function (FTSIM_FN, FTSIM_SYM), patch number FTSIM_PATCH on its stack.
 * Not `replace`: patches stack. The replacement returns the marker -(200 + FTSIM_PATCH), which
 * the guest driver reads back from the system call that calls the function. */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>

static noinline int ftsim_replacement(void)
{
	return -(200 + FTSIM_PATCH);
}

static struct klp_func funcs[] = {
	{ .old_name = FTSIM_SYM, .new_func = ftsim_replacement, },
	{ }
};

static struct klp_object objs[] = {
	{ .name = NULL, .funcs = funcs, },
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int ftsim_klp_init(void)
{
	return klp_enable_patch(&patch);
}

static void ftsim_klp_exit(void)
{
}

module_init(ftsim_klp_init);
module_exit(ftsim_klp_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("ftsim: livepatch of " FTSIM_SYM);
