// SPDX-License-Identifier: GPL-2.0
/*
 * ftsim-guest: calling every function and reporting what ran, the calibration, the cleanup that
 * checks the kernel is back where it began, and the kernel's log.
 */
#include "guest.h"

/* ---- observation -------------------------------------------------------------------------- */

long call_probe(int f, int *err)
{
	const char *p = funcs[f].probe;
	long r;

	errno = 0;
	if (!strcmp(p, "syslog"))
		r = syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	else if (!strcmp(p, "settimeofday"))
		r = syscall(SYS_settimeofday, NULL, NULL);
	else if (!strcmp(p, "quotactl"))
		r = syscall(SYS_quotactl, QCMD(Q_SYNC, USRQUOTA), NULL, 0, NULL);
	else if (!strcmp(p, "statfs")) {
		struct statfs s;
		r = syscall(SYS_statfs, "/", &s);
	} else
		fatal("unknown probe %s", p);
	*err = r < 0 ? errno : 0;
	return r;
}

void trace_clear(int t)
{
	char path[256];

	tracer_path(path, sizeof(path), t, "trace");
	int e = write_file(path, "", O_TRUNC);
	if (e)
		fatal("clearing %s: %s", path, strerror(e));
}

int trace_saw(int t, const char *sym)
{
	char path[256], needle[300];
	static char buf[1 << 16];

	tracer_path(path, sizeof(path), t, "trace");
	if (read_file(path, buf, sizeof(buf)) < 0)
		fatal("reading %s: %s", path, strerror(errno));
	snprintf(needle, sizeof(needle), ": %.120s <-", sym);
	return strstr(buf, needle) != NULL;
}

void observe_one(int line, int f)
{
	unsigned long long before[LINKS_MAX];
	char progs[512] = "", tracers[128] = "", body[32], item[32];
	int err;
	long r;

	for (int t = 0; t < TRACERS_MAX; t++)
		if (tracer_registered[t])
			trace_clear(t);
	unsigned long d1 = 0, d2 = 0;
	char direct[32] = "";

	for (int i = 0; i < LINKS_MAX; i++)
		before[i] = links[i].used ? link_hits(&links[i]) : 0;
	if (funcs[f].direct) {
		d1 = direct_hits(f, 1);
		d2 = direct_hits(f, 2);
	}
	r = call_probe(f, &err);
	if (funcs[f].direct) {
		unsigned long n1 = direct_hits(f, 1) - d1, n2 = direct_hits(f, 2) - d2;
		unsigned long cur = funcs[f].direct == 1 ? n1 : n2, old = funcs[f].direct == 1 ? n2 : n1;
		if (cur == 1 && old == 0)
			snprintf(direct, sizeof(direct), " direct=current");
		else if (cur == 0 && old == 1)
			snprintf(direct, sizeof(direct), " direct=stale");
		else if (cur || old)
			snprintf(direct, sizeof(direct), " direct=%lu+%lu", cur, old);
	}
	for (int i = 0; i < LINKS_MAX; i++) {
		if (!links[i].used)
			continue;
		unsigned long long d = link_hits(&links[i]) - before[i];
		if (d == 0)
			continue;
		if (d != 1)
			snprintf(item, sizeof(item), "%s%d*%llu", progs[0] ? "," : "", links[i].line, d);
		else
			snprintf(item, sizeof(item), "%s%d", progs[0] ? "," : "", links[i].line);
		strncat(progs, item, sizeof(progs) - strlen(progs) - 1);
	}
	for (int t = 0; t < TRACERS_MAX; t++) {
		if (!tracer_registered[t] || !trace_saw(t, funcs[f].sym))
			continue;
		snprintf(item, sizeof(item), "%st%d", tracers[0] ? "," : "", t);
		strncat(tracers, item, sizeof(tracers) - strlen(tracers) - 1);
	}
	if (r < 0 && err > 200 && err <= 200 + SLOTS_MAX)
		snprintf(body, sizeof(body), "klp:%d", err - 200);
	else if (r < 0 && err == 210)
		snprintf(body, sizeof(body), "kprobe");
	else
		snprintf(body, sizeof(body), "original");
	say("call %d f%d body=%s progs=%s tracers=%s%s ret=%ld/%d", line, f, body, progs, tracers,
	    direct, r, err);
}

void calibrate(void)
{
	for (int f = 0; f < nfuncs; f++) {
		/* a tracer with just this function: one call of the probe must be one entry */
		char path[256], buf[1 << 14], needle[300];
		int n = 0, err;

		tracer_make(7);
		tracer_path(path, sizeof(path), 7, "set_ftrace_filter");
		if (write_file(path, funcs[f].sym, O_TRUNC)) {
			say("calibrate f%d bad %s is not in available_filter_functions", f, funcs[f].sym);
			continue;
		}
		tracer_path(path, sizeof(path), 7, "current_tracer");
		if (write_file(path, "function", O_TRUNC))
			fatal("starting the calibration tracer");
		trace_clear(7);
		call_probe(f, &err);
		sleep_ms(20); /* anything else calling it meanwhile shows up as a second entry */
		tracer_path(path, sizeof(path), 7, "trace");
		read_file(path, buf, sizeof(buf));
		snprintf(needle, sizeof(needle), ": %.120s <-", funcs[f].sym);
		for (char *p = buf; (p = strstr(p, needle)); p++)
			n++;
		tracer_path(path, sizeof(path), 7, "current_tracer");
		write_file(path, "nop", O_TRUNC);
		tracer_path(path, sizeof(path), 7, "set_ftrace_filter");
		write_file(path, "", O_TRUNC);
		if (n == 1)
			say("calibrate f%d ok", f);
		else
			say("calibrate f%d bad one call of %s gave %d entries", f, funcs[f].probe, n);
	}
}

/* ---- cleanup ------------------------------------------------------------------------------ */

/* ftrace_kill() (FTRACE_WARN_ON) leaves ftrace_disabled set: ftrace_regex_open says ENODEV */
int ftrace_is_dead(void)
{
	char path[256];
	int e;

	tracer_make(7);
	tracer_path(path, sizeof(path), 7, "set_ftrace_filter");
	e = write_file(path, "security_syslog\n", O_TRUNC);
	write_file(path, "", O_TRUNC);
	return e == ENODEV;
}

void cleanup(int id)
{
	char buf[1 << 14], path[256], what[512] = "";

	kmsg_drain(-1);
	if (ftrace_is_dead()) {
		/* Undoing anything now only runs into what the dead ftrace left (on 6.1.192 the
		 * unlink's DISABLE_PEER then oopses in bpf_trampoline_update): this boot is over. */
		say("clean %d dirty ftrace is dead (ftrace_kill: an FTRACE_WARN_ON fired)", id);
		say("stopped");
		exit(0);
	}

	for (int i = 0; i < LINKS_MAX; i++)
		if (links[i].used)
			link_destroy(&links[i]);
	for (int f = 0; f < nfuncs; f++) {
		while (funcs[f].klp_n) {
			int e = klp_disable_top(f);
			if (e)
				fatal("cleanup: disabling the livepatch of f%d: %s", f, strerror(e));
		}
		while (kprobe_disarm_one(f) == 0)
			;
		if (funcs[f].direct) {
			int e = direct_unregister(f);
			if (e)
				fatal("cleanup: unregistering the direct user of f%d: %s", f, strerror(e));
		}
	}
	for (int t = 0; t < TRACERS_MAX; t++) {
		if (!tracer_made[t])
			continue;
		tracer_unregister(t);
		tracer_path(path, sizeof(path), t, "set_ftrace_filter");
		write_file(path, "", O_TRUNC);
		tracer_path(path, sizeof(path), t, "set_ftrace_notrace");
		write_file(path, "", O_TRUNC);
	}
	/* the initial state: no record traced by anyone, no livepatch, no module of ours */
	if (read_file("/sys/kernel/tracing/enabled_functions", buf, sizeof(buf)) > 0) {
		strncat(what, "enabled_functions: ", sizeof(what) - strlen(what) - 1);
		strncat(what, strtok(buf, "\n"), sizeof(what) - strlen(what) - 1);
	}
	if (read_file("/proc/modules", buf, sizeof(buf)) > 0 && strstr(buf, "ftsim_"))
		strncat(what, " a ftsim module is still loaded", sizeof(what) - strlen(what) - 1);
	kmsg_drain(-1);
	if (ftrace_is_dead())
		strncat(what, " ftrace is dead (ftrace_kill: an FTRACE_WARN_ON fired)",
			sizeof(what) - strlen(what) - 1);
	if (what[0])
		say("clean %d dirty %s", id, what);
	else
		say("clean %d ok", id);
}

/* ---- the kernel's log ---------------------------------------------------------------------- */

/* Opening /dev/kmsg calls check_syslog_permissions -> security_syslog (f0): done once, before
 * the calibration, so it is no call of f0 during a script. */
void kmsg_open(void)
{
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg_fd < 0)
		fatal("open /dev/kmsg: %s", strerror(errno));
	lseek(kmsg_fd, 0, SEEK_END);
}

/* Reports the warnings and oopses the kernel logged since the last call, for step `line`:
 * "@@ftsim kmsg N WHERE", WHERE being the "WARNING: ... at FILE:LINE FUNC" text. */
void kmsg_drain(int line)
{
	char rec[2048];
	ssize_t n;

	while ((n = read(kmsg_fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue; /* EPIPE: records were overwritten; go on with the next */
		rec[n] = 0;
		char *msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		msg[strcspn(msg, "\n")] = 0;
		char *w = strstr(msg, "WARNING: ");
		if (w) {
			char *at = strstr(w, " at ");
			say("kmsg %d WARNING%s", line, at ? at : "");
		} else if (!strncmp(msg, "BUG: ", 5) || strstr(msg, "Oops")) {
			say("kmsg %d %s", line, msg);
		}
	}
}
