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
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FUNCS_MAX 8
#define SLOTS_MAX 3
#define LINKS_MAX 64
#define TRACERS_MAX 8
#define LINE_MAX_LEN 1024
#define TRANSITION_WAIT_MS 60000
#define RMMOD_WAIT_MS 10000

enum kind { FENTRY, FEXIT, FMOD_RET, KINDS };
static const char *kind_names[KINDS] = { "fentry", "fexit", "fmod_ret" };
static const char *prog_names[KINDS] = { "ftsim_fentry", "ftsim_fexit", "ftsim_fmod_ret" };

struct func {
	char sym[128];
	char probe[32];
	int klp[SLOTS_MAX];	/* stack of patch numbers (1-based), klp_n deep */
	int klp_n;
	int kp[SLOTS_MAX];	/* kprobe slots armed */
	int direct;		/* 0: no single-ip direct user; 1 or 2: its current trampoline */
};

struct link {
	int used;
	int line;		/* the plan line (op N) that made it: names the program */
	int kind;
	int fn;
	struct bpf_object *obj;
	struct bpf_link *lk;
	int map_fd;
	size_t value_size;
};

static char dir[512];
static int kmsg_fd = -1;	/* /dev/kmsg, opened once before any observation */

static void kmsg_drain(int line);
static struct func funcs[FUNCS_MAX];
static int nfuncs;
static struct link links[LINKS_MAX];
static int tracer_registered[TRACERS_MAX];
static int tracer_made[TRACERS_MAX];
static char libbpf_last[1024];

static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("@@ftsim ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void fatal(const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("machinery %s", buf);
	exit(3);
}

static const char *errname(int e)
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

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* write(2) of a whole string to a file; returns 0 or the errno of open, write or close */
static int write_file(const char *path, const char *s, int flags)
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

static int read_file(const char *path, char *buf, size_t size)
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

static int insmod(const char *name)
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

static int rmmod(const char *name)
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

/* ---- livepatch ---------------------------------------------------------------------------- */

static void klp_name(char *buf, size_t n, int f, int slot)
{
	snprintf(buf, n, "ftsim_klp_f%d_p%d", f, slot);
}

static void klp_wait(const char *name)
{
	char path[256], buf[16];
	int waited = 0;

	snprintf(path, sizeof(path), "/sys/kernel/livepatch/%s/transition", name);
	for (;;) {
		if (read_file(path, buf, sizeof(buf)) < 0)
			return; /* gone: the patch was freed */
		if (buf[0] == '0')
			return;
		if (waited >= TRANSITION_WAIT_MS)
			fatal("livepatch %s: transition did not end in %d ms", name, TRANSITION_WAIT_MS);
		sleep_ms(2);
		waited += 2;
	}
}

static int slot_free(const int *used, int n, int slot)
{
	for (int i = 0; i < n; i++)
		if (used[i] == slot)
			return 0;
	return 1;
}

static void op_klp_enable(int line, int f)
{
	struct func *fn = &funcs[f];
	char name[64];
	int slot, e;

	if (fn->klp_n == SLOTS_MAX) {
		say("op %d cannot more than %d stacked livepatches on one function", line, SLOTS_MAX);
		return;
	}
	for (slot = 1; !slot_free(fn->klp, fn->klp_n, slot); slot++)
		;
	klp_name(name, sizeof(name), f, slot);
	e = insmod(name);
	if (e) {
		say("op %d err %s", line, errname(e));
		return;
	}
	klp_wait(name);
	fn->klp[fn->klp_n++] = slot;
	say("op %d ok", line);
}

static int klp_disable_top(int f)
{
	struct func *fn = &funcs[f];
	char name[64], path[256];
	int e;

	klp_name(name, sizeof(name), f, fn->klp[fn->klp_n - 1]);
	snprintf(path, sizeof(path), "/sys/kernel/livepatch/%s/enabled", name);
	e = write_file(path, "0", 0);
	if (e)
		return e;
	klp_wait(name);
	fn->klp_n--;
	e = rmmod(name);
	if (e)
		fatal("rmmod %s after disabling it: %s", name, strerror(e));
	return 0;
}

static void op_klp_disable(int line, int f)
{
	int e;

	if (funcs[f].klp_n == 0) {
		say("op %d err EINVAL", line); /* owner level: no patch of this function */
		return;
	}
	e = klp_disable_top(f);
	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}

/* ---- kprobes ------------------------------------------------------------------------------ */

static void op_kprobe_arm(int line, int f)
{
	struct func *fn = &funcs[f];
	char name[64];
	int slot, e;

	for (slot = 0; slot < SLOTS_MAX && fn->kp[slot]; slot++)
		;
	if (slot == SLOTS_MAX) {
		say("op %d cannot more than %d kprobes on one function", line, SLOTS_MAX);
		return;
	}
	snprintf(name, sizeof(name), "ftsim_kp_f%d_%d", f, slot + 1);
	e = insmod(name);
	if (e) {
		say("op %d err %s", line, errname(e));
		return;
	}
	fn->kp[slot] = 1;
	say("op %d ok", line);
}

static int kprobe_disarm_one(int f)
{
	struct func *fn = &funcs[f];
	char name[64];

	for (int slot = SLOTS_MAX - 1; slot >= 0; slot--) {
		if (!fn->kp[slot])
			continue;
		snprintf(name, sizeof(name), "ftsim_kp_f%d_%d", f, slot + 1);
		int e = rmmod(name);
		if (e)
			fatal("rmmod %s: %s", name, strerror(e));
		fn->kp[slot] = 0;
		return 0;
	}
	return ENOENT;
}

static void op_kprobe_disarm(int line, int f)
{
	int e = kprobe_disarm_one(f);

	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}

/* ---- the single-ip direct API (6.1): modules ftsim_direct_f<I> ----------------------------- */

static unsigned long kallsyms_addr(const char *sym)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256], type;
	unsigned long addr, found = 0;

	if (!f)
		fatal("open /proc/kallsyms: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx %c %255s", &addr, &type, name) == 3 && !strcmp(name, sym) &&
		    (type == 'T' || type == 't')) {
			found = addr;
			break;
		}
	}
	fclose(f);
	if (!found)
		fatal("%s not in /proc/kallsyms", sym);
	return found;
}

static int direct_ctl(int f, const char *cmd)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/ftsim_direct_f%d/parameters/ctl", f);
	return write_file(path, cmd, O_TRUNC);
}

static unsigned long direct_hits(int f, int which)
{
	char path[256], buf[64];

	snprintf(path, sizeof(path), "/sys/module/ftsim_direct_f%d/parameters/hits%d", f, which);
	if (read_file(path, buf, sizeof(buf)) < 0)
		fatal("reading %s: %s", path, strerror(errno));
	return strtoul(buf, NULL, 10);
}

static void op_direct_register(int line, int f)
{
	char path[768], params[64], name[64];
	int fd, e;

	if (funcs[f].direct) {
		say("op %d err EBUSY", line); /* owner level: a user is there already */
		return;
	}
	snprintf(name, sizeof(name), "ftsim_direct_f%d", f);
	snprintf(path, sizeof(path), "%s/%s.ko", dir, name);
	if (access(path, R_OK)) {
		say("op %d cannot this kernel has no single-ip direct API (no %s.ko)", line, name);
		return;
	}
	snprintf(params, sizeof(params), "ip=0x%lx", kallsyms_addr(funcs[f].sym));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || syscall(SYS_finit_module, fd, params, 0))
		fatal("loading %s: %s", path, strerror(errno));
	close(fd);
	e = direct_ctl(f, "register");
	if (e) {
		if (rmmod(name))
			fatal("rmmod %s", name);
		say("op %d err %s", line, errname(e));
		return;
	}
	funcs[f].direct = 1;
	say("op %d ok", line);
}

static void op_direct_modify(int line, int f)
{
	int e;

	if (!funcs[f].direct) {
		say("op %d err ENOENT", line);
		return;
	}
	e = direct_ctl(f, "modify");
	if (e) {
		say("op %d err %s", line, errname(e));
		return;
	}
	funcs[f].direct = 3 - funcs[f].direct;
	say("op %d ok", line);
}

static int direct_unregister(int f)
{
	char name[64];
	int e = direct_ctl(f, "unregister");

	if (e)
		return e;
	snprintf(name, sizeof(name), "ftsim_direct_f%d", f);
	if (rmmod(name))
		fatal("rmmod %s", name);
	funcs[f].direct = 0;
	return 0;
}

static void op_direct_unregister(int line, int f)
{
	int e;

	if (!funcs[f].direct) {
		say("op %d err ENOENT", line);
		return;
	}
	e = direct_unregister(f);
	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}

/* ---- BPF ---------------------------------------------------------------------------------- */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(libbpf_last, sizeof(libbpf_last), fmt, ap);
	return 0;
}

static int parse_kind(const char *s)
{
	for (int k = 0; k < KINDS; k++)
		if (!strcmp(s, kind_names[k]))
			return k;
	return -1;
}

static void op_bpf_link(int line, int kind, int f)
{
	char path[768];
	struct bpf_object *obj;
	struct bpf_program *prog, *want = NULL;
	struct bpf_map *map, *bss = NULL;
	struct link *l = NULL;
	int e;

	for (int i = 0; i < LINKS_MAX; i++)
		if (!links[i].used) {
			l = &links[i];
			break;
		}
	if (!l) {
		say("op %d cannot more than %d BPF links", line, LINKS_MAX);
		return;
	}
	snprintf(path, sizeof(path), "%s/ftsim_bpf.bpf.o", dir);
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		fatal("bpf_object__open_file %s: %s", path, strerror(errno));
	bpf_object__for_each_program(prog, obj) {
		if (!strcmp(bpf_program__name(prog), prog_names[kind]))
			want = prog;
		else
			bpf_program__set_autoload(prog, false);
	}
	if (!want)
		fatal("program %s not in %s", prog_names[kind], path);
	e = bpf_program__set_attach_target(want, 0, funcs[f].sym);
	if (e)
		fatal("bpf_program__set_attach_target %s: %s", funcs[f].sym, strerror(-e));
	e = bpf_object__load(obj);
	if (e) {
		/* The verifier refused the program for this target: the kernel's answer to the link
		 * request (the model's link is the load + attach of one program). */
		say("op %d err %s", line, errname(-e));
		bpf_object__close(obj);
		return;
	}
	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);
		size_t len = strlen(n);
		if (len >= 4 && !strcmp(n + len - 4, ".bss"))
			bss = map;
	}
	if (!bss)
		fatal("no .bss map in %s", path);
	l->lk = bpf_program__attach_trace(want);
	if (!l->lk) {
		e = errno;
		say("op %d err %s", line, errname(e));
		bpf_object__close(obj);
		return;
	}
	l->used = 1;
	l->line = line;
	l->kind = kind;
	l->fn = f;
	l->obj = obj;
	l->map_fd = bpf_map__fd(bss);
	l->value_size = bpf_map__value_size(bss);
	say("op %d ok", line);
}

static void link_destroy(struct link *l)
{
	bpf_link__destroy(l->lk); /* close(2): released in process context, synchronously */
	bpf_object__close(l->obj);
	memset(l, 0, sizeof(*l));
}

static void op_bpf_unlink(int line, int kind, int f)
{
	struct link *oldest = NULL;

	for (int i = 0; i < LINKS_MAX; i++) {
		struct link *l = &links[i];
		if (l->used && l->kind == kind && l->fn == f && (!oldest || l->line < oldest->line))
			oldest = l;
	}
	if (!oldest) {
		say("op %d err ENOENT", line);
		return;
	}
	link_destroy(oldest);
	say("op %d ok", line);
}

static unsigned long long link_hits(struct link *l)
{
	char buf[256] = { 0 };
	int key = 0;

	if (l->value_size > sizeof(buf))
		fatal(".bss value of %zu bytes", l->value_size);
	if (bpf_map_lookup_elem(l->map_fd, &key, buf))
		fatal("reading the hit counter of link %d: %s", l->line, strerror(errno));
	return *(unsigned long long *)buf;
}

/* ---- tracers (tracefs instances, function tracer) ----------------------------------------- */

static void tracer_path(char *buf, size_t n, int t, const char *file)
{
	snprintf(buf, n, "/sys/kernel/tracing/instances/ftsim_t%d%s%s", t, file ? "/" : "", file ? file : "");
}

static void tracer_make(int t)
{
	char path[256];

	if (tracer_made[t])
		return;
	tracer_path(path, sizeof(path), t, NULL);
	if (mkdir(path, 0755) && errno != EEXIST)
		fatal("mkdir %s: %s", path, strerror(errno));
	tracer_made[t] = 1;
}

/* a set written as "{f0,f1}" -> "security_syslog security_settime64" */
static int parse_set(const char *s, char *out, size_t n)
{
	const char *p = s;

	out[0] = 0;
	if (*p++ != '{')
		return -1;
	while (*p && *p != '}') {
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p != 'f')
			return -1;
		int f = atoi(p + 1);
		if (f < 0 || f >= nfuncs)
			return -1;
		/* one word per line: tracefs takes one word per write(2) and keeps a partial one */
		strncat(out, funcs[f].sym, n - strlen(out) - 1);
		strncat(out, "\n", n - strlen(out) - 1);
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '}' ? 0 : -1;
}

static void op_tracer_register(int line, int t, const char *filter, const char *notrace)
{
	char path[256], fs[1024], ns[1024];
	int e;

	if (parse_set(filter, fs, sizeof(fs)) || parse_set(notrace, ns, sizeof(ns)))
		fatal("bad tracer sets %s %s", filter, notrace);
	if (tracer_registered[t]) {
		say("op %d err EBUSY", line);
		return;
	}
	if (!fs[0]) {
		say("op %d cannot a tracer with an empty filter traces every function", line);
		return;
	}
	tracer_make(t);
	tracer_path(path, sizeof(path), t, "set_ftrace_filter");
	e = write_file(path, fs, O_TRUNC);
	if (!e) {
		tracer_path(path, sizeof(path), t, "set_ftrace_notrace");
		e = write_file(path, ns, O_TRUNC);
	}
	if (!e) {
		tracer_path(path, sizeof(path), t, "current_tracer");
		e = write_file(path, "function", O_TRUNC);
	}
	if (e) {
		say("op %d err %s", line, errname(e));
		return;
	}
	tracer_registered[t] = 1;
	say("op %d ok", line);
}

/* does the filter file list anything but `sym`? */
static int filter_has_other(int t, const char *sym)
{
	char path[256], buf[8192], *save = NULL;

	tracer_path(path, sizeof(path), t, "set_ftrace_filter");
	if (read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#' || !l[0])
			continue;
		if (strcmp(l, sym))
			return 1;
	}
	return 0;
}

static void op_tracer_set(int line, int t, int notrace, int add, int f)
{
	char path[256], word[160];
	int e;

	if (!notrace && !add && tracer_registered[t] && !filter_has_other(t, funcs[f].sym)) {
		say("op %d cannot the tracer's filter would become empty (every function)", line);
		return;
	}
	tracer_make(t);
	tracer_path(path, sizeof(path), t, notrace ? "set_ftrace_notrace" : "set_ftrace_filter");
	snprintf(word, sizeof(word), "%s%s\n", add ? "" : "!", funcs[f].sym);
	e = write_file(path, word, O_APPEND);
	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}

static int tracer_unregister(int t)
{
	char path[256];

	if (!tracer_registered[t])
		return ENOENT;
	tracer_path(path, sizeof(path), t, "current_tracer");
	int e = write_file(path, "nop", O_TRUNC);
	if (e)
		return e;
	tracer_registered[t] = 0;
	return 0;
}

static void op_tracer_unregister(int line, int t)
{
	int e = tracer_unregister(t);

	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}

/* ---- observation -------------------------------------------------------------------------- */

static long call_probe(int f, int *err)
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

static void trace_clear(int t)
{
	char path[256];

	tracer_path(path, sizeof(path), t, "trace");
	int e = write_file(path, "", O_TRUNC);
	if (e)
		fatal("clearing %s: %s", path, strerror(e));
}

static int trace_saw(int t, const char *sym)
{
	char path[256], needle[300];
	static char buf[1 << 16];

	tracer_path(path, sizeof(path), t, "trace");
	if (read_file(path, buf, sizeof(buf)) < 0)
		fatal("reading %s: %s", path, strerror(errno));
	snprintf(needle, sizeof(needle), ": %.120s <-", sym);
	return strstr(buf, needle) != NULL;
}

static void observe_one(int line, int f)
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

static void calibrate(void)
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
static int ftrace_is_dead(void)
{
	char path[256];
	int e;

	tracer_make(7);
	tracer_path(path, sizeof(path), 7, "set_ftrace_filter");
	e = write_file(path, "security_syslog\n", O_TRUNC);
	write_file(path, "", O_TRUNC);
	return e == ENODEV;
}

static void cleanup(int id)
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
static void kmsg_open(void)
{
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg_fd < 0)
		fatal("open /dev/kmsg: %s", strerror(errno));
	lseek(kmsg_fd, 0, SEEK_END);
}

/* Reports the warnings and oopses the kernel logged since the last call, for step `line`:
 * "@@ftsim kmsg N WHERE", WHERE being the "WARNING: ... at FILE:LINE FUNC" text. */
static void kmsg_drain(int line)
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

/* ---- the plan ----------------------------------------------------------------------------- */

static int parse_fn(const char *s)
{
	if (!s || s[0] != 'f')
		return -1;
	int f = atoi(s + 1);
	return f >= 0 && f < nfuncs ? f : -1;
}

static int parse_tracer(const char *s)
{
	if (!s || s[0] != 't')
		return -1;
	int t = atoi(s + 1);
	return t >= 0 && t < TRACERS_MAX - 1 ? t : -1; /* t7 is the calibration instance */
}

static void do_op(int line, char *words[], int n)
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
