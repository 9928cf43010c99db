// SPDX-License-Identifier: GPL-2.0
/*
 * ftsim-guest: the real-kernel side of `ftsim kernel`. Runs inside the QEMU guest (chrooted into
 * the host's root over 9p) and performs a plan written by the host, one command per line:
 *
 *   dir PATH                      where the modules and the BPF object are
 *   func I SYMBOL PROBE           f<I> is SYMBOL; PROBE (syslog|settimeofday|quotactl|statfs)
 *                                 is the system call that calls it once
 *   calibrate                     one call of each probe is one hit of its function
 *   script ID                     a new script starts (the kernel is in its initial state)
 *   op N OPERATION...             perform one owner-level operation (the reproducer syntax)
 *   observe N                     call every function once and report what ran
 *   cleanup ID                    undo everything; check that the kernel is back where it began
 *
 * and answers on stdout, one line per result, every line starting with "@@ftsim ":
 *
 *   @@ftsim op N ok | op N err NAME | op N cannot WHY
 *   @@ftsim call N f<I> body=original|klp:<J>|kprobe progs=<lines> tracers=<ids> ret=<r>
 *   @@ftsim clean ID ok | clean ID dirty WHAT
 *   @@ftsim calibrate f<I> ok | calibrate f<I> bad WHAT
 *   @@ftsim machinery WHAT        the harness itself failed (the host stops the run)
 *
 * Owner-level bookkeeping (which patch is on top, which link is the oldest of a kind) is kept
 * here, as the real owners keep it; refusals the model makes at owner level without calling
 * ftrace (klp-disable of an unpatched function: EINVAL, bpf-unlink / kprobe-disarm with nothing
 * there: ENOENT, tracer-register of a registered tracer: EBUSY, tracer-unregister of an
 * unregistered one: ENOENT) are answered from that bookkeeping.
 *
 * This file reads the plan and holds the shared state and utilities; owners.c performs the
 * operations, observe.c the observation, the cleanup check and the kernel's log (guest.h).
 */
#include "guest.h"

const char *kind_names[KINDS] = { "fentry", "fexit", "fmod_ret" };
const char *prog_names[KINDS] = { "ftsim_fentry", "ftsim_fexit", "ftsim_fmod_ret" };

char dir[512];
int kmsg_fd = -1;	/* /dev/kmsg, opened once before any observation */
struct func funcs[FUNCS_MAX];
int nfuncs;
struct link links[LINKS_MAX];
int tracer_registered[TRACERS_MAX];
int tracer_made[TRACERS_MAX];
char libbpf_last[1024];

void say(const char *fmt, ...)
{
	va_list ap;

	fputs("@@ftsim ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("machinery %s", buf);
	exit(3);
}

const char *errname(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case E2BIG: return "E2BIG";
	case EEXIST: return "EEXIST";
	case EPERM: return "EPERM";
	case EFAULT: return "EFAULT";
	case ENOSPC: return "ENOSPC";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ESRCH: return "ESRCH";
	case ENOEXEC: return "ENOEXEC";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
	}
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* write(2) of a whole string to a file; returns 0 or the errno of open, write or close */
int write_file(const char *path, const char *s, int flags)
{
	int fd = open(path, O_WRONLY | flags);
	int e = 0;
	size_t len = strlen(s);

	if (fd < 0)
		return errno;
	/* tracefs parses one word per write(2) and returns how much it took: write the rest */
	while (len && !e) {
		ssize_t n = write(fd, s, len);
		if (n <= 0)
			e = n < 0 ? errno : EIO;
		else {
			s += n;
			len -= n;
		}
	}
	if (close(fd) && !e)
		e = errno;
	return e;
}

int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n, total = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)total < size - 1 && (n = read(fd, buf + total, size - 1 - total)) > 0)
		total += n;
	buf[total] = 0;
	close(fd);
	return (int)total;
}

int insmod(const char *name)
{
	char path[768];
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s.ko", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fatal("open %s: %s", path, strerror(errno));
	r = syscall(SYS_finit_module, fd, "", 0);
	r = r ? errno : 0;
	close(fd);
	return r;
}

int rmmod(const char *name)
{
	int waited = 0;

	for (;;) {
		if (syscall(SYS_delete_module, name, O_NONBLOCK) == 0)
			return 0;
		if ((errno != EBUSY && errno != EAGAIN) || waited >= RMMOD_WAIT_MS)
			return errno;
		sleep_ms(5);
		waited += 5;
	}
}

/* ---- the plan ----------------------------------------------------------------------------- */

int parse_fn(const char *s)
{
	if (!s || s[0] != 'f')
		return -1;
	int f = atoi(s + 1);
	return f >= 0 && f < nfuncs ? f : -1;
}

int parse_tracer(const char *s)
{
	if (!s || s[0] != 't')
		return -1;
	int t = atoi(s + 1);
	return t >= 0 && t < TRACERS_MAX - 1 ? t : -1; /* t7 is the calibration instance */
}

void do_op(int line, char *words[], int n)
{
	const char *op = words[0];
	int f, t, k;

	if (!strcmp(op, "klp-enable") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_klp_enable(line, f);
	else if (!strcmp(op, "klp-disable") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_klp_disable(line, f);
	else if (!strcmp(op, "kprobe-arm") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_kprobe_arm(line, f);
	else if (!strcmp(op, "kprobe-disarm") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_kprobe_disarm(line, f);
	else if (!strcmp(op, "direct-register") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_direct_register(line, f);
	else if (!strcmp(op, "direct-modify") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_direct_modify(line, f);
	else if (!strcmp(op, "direct-unregister") && n == 2 && (f = parse_fn(words[1])) >= 0)
		op_direct_unregister(line, f);
	else if (!strcmp(op, "bpf-link") && n == 3 && (k = parse_kind(words[1])) >= 0 &&
		 (f = parse_fn(words[2])) >= 0)
		op_bpf_link(line, k, f);
	else if (!strcmp(op, "bpf-unlink") && n == 3 && (k = parse_kind(words[1])) >= 0 &&
		 (f = parse_fn(words[2])) >= 0)
		op_bpf_unlink(line, k, f);
	else if (!strcmp(op, "tracer-register") && n == 4 && (t = parse_tracer(words[1])) >= 0 &&
		 !strncmp(words[2], "filter=", 7) && !strncmp(words[3], "notrace=", 8))
		op_tracer_register(line, t, words[2] + 7, words[3] + 8);
	else if (!strcmp(op, "tracer-unregister") && n == 2 && (t = parse_tracer(words[1])) >= 0)
		op_tracer_unregister(line, t);
	else if (!strncmp(op, "tracer-", 7) && n == 3 && (t = parse_tracer(words[1])) >= 0 &&
		 (f = parse_fn(words[2])) >= 0) {
		int notrace = !strncmp(op, "tracer-notrace-", 15);
		const char *verb = op + (notrace ? 15 : 14);
		if (!notrace && strncmp(op, "tracer-filter-", 14))
			fatal("unknown operation %s", op);
		op_tracer_set(line, t, notrace, !strcmp(verb, "add"), f);
	} else
		say("op %d cannot the guest driver does not perform `%s`", line, op);
}

int main(int argc, char **argv)
{
	char buf[LINE_MAX_LEN];
	FILE *plan;

	if (argc != 2) {
		fprintf(stderr, "usage: ftsim-guest PLAN\n");
		return 2;
	}
	plan = fopen(argv[1], "r");
	if (!plan)
		fatal("open plan %s: %s", argv[1], strerror(errno));
	libbpf_set_print(libbpf_print);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(buf, sizeof(buf), plan)) {
		char *words[16], *save = NULL;
		int n = 0;

		buf[strcspn(buf, "\n")] = 0;
		for (char *w = strtok_r(buf, " \t", &save); w && n < 16; w = strtok_r(NULL, " \t", &save))
			words[n++] = w;
		if (n == 0 || words[0][0] == '#')
			continue;
		if (!strcmp(words[0], "dir") && n == 2)
			snprintf(dir, sizeof(dir), "%s", words[1]);
		else if (!strcmp(words[0], "func") && n == 4) {
			int i = atoi(words[1]);
			if (i != nfuncs || i >= FUNCS_MAX)
				fatal("functions must be numbered in order");
			snprintf(funcs[i].sym, sizeof(funcs[i].sym), "%s", words[2]);
			snprintf(funcs[i].probe, sizeof(funcs[i].probe), "%s", words[3]);
			nfuncs++;
		} else if (!strcmp(words[0], "calibrate")) {
			kmsg_open();
			calibrate();
			kmsg_drain(0);
		}
		else if (!strcmp(words[0], "script") && n == 2)
			say("script %s", words[1]);
		else if (!strcmp(words[0], "op") && n >= 3) {
			do_op(atoi(words[1]), words + 2, n - 2);
			kmsg_drain(atoi(words[1]));
		} else if (!strcmp(words[0], "observe") && n == 2) {
			for (int f = 0; f < nfuncs; f++) {
				observe_one(atoi(words[1]), f);
				kmsg_drain(atoi(words[1]));
			}
		} else if (!strcmp(words[0], "cleanup") && n == 2)
			cleanup(atoi(words[1]));
		else
			fatal("bad plan line: %s", words[0]);
	}
	say("done");
	return 0;
}
