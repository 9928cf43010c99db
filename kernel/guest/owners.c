// SPDX-License-Identifier: GPL-2.0
/*
 * ftsim-guest: the owner-level operations on the real owners (livepatch, kprobes, the single-ip
 * direct API, BPF, tracers), each answering one plan line.
 */
#include "guest.h"

/* ---- livepatch ---------------------------------------------------------------------------- */

void klp_name(char *buf, size_t n, int f, int slot)
{
	snprintf(buf, n, "ftsim_klp_f%d_p%d", f, slot);
}

void klp_wait(const char *name)
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

int slot_free(const int *used, int n, int slot)
{
	for (int i = 0; i < n; i++)
		if (used[i] == slot)
			return 0;
	return 1;
}

void op_klp_enable(int line, int f)
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

int klp_disable_top(int f)
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

void op_klp_disable(int line, int f)
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

void op_kprobe_arm(int line, int f)
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

int kprobe_disarm_one(int f)
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

void op_kprobe_disarm(int line, int f)
{
	int e = kprobe_disarm_one(f);

	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}

/* ---- the single-ip direct API (6.1): modules ftsim_direct_f<I> ----------------------------- */

unsigned long kallsyms_addr(const char *sym)
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

int direct_ctl(int f, const char *cmd)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/ftsim_direct_f%d/parameters/ctl", f);
	return write_file(path, cmd, O_TRUNC);
}

unsigned long direct_hits(int f, int which)
{
	char path[256], buf[64];

	snprintf(path, sizeof(path), "/sys/module/ftsim_direct_f%d/parameters/hits%d", f, which);
	if (read_file(path, buf, sizeof(buf)) < 0)
		fatal("reading %s: %s", path, strerror(errno));
	return strtoul(buf, NULL, 10);
}

void op_direct_register(int line, int f)
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

void op_direct_modify(int line, int f)
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

int direct_unregister(int f)
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

void op_direct_unregister(int line, int f)
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

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(libbpf_last, sizeof(libbpf_last), fmt, ap);
	return 0;
}

int parse_kind(const char *s)
{
	for (int k = 0; k < KINDS; k++)
		if (!strcmp(s, kind_names[k]))
			return k;
	return -1;
}

void op_bpf_link(int line, int kind, int f)
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

void link_destroy(struct link *l)
{
	bpf_link__destroy(l->lk); /* close(2): released in process context, synchronously */
	bpf_object__close(l->obj);
	memset(l, 0, sizeof(*l));
}

void op_bpf_unlink(int line, int kind, int f)
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

unsigned long long link_hits(struct link *l)
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

void tracer_path(char *buf, size_t n, int t, const char *file)
{
	snprintf(buf, n, "/sys/kernel/tracing/instances/ftsim_t%d%s%s", t, file ? "/" : "", file ? file : "");
}

void tracer_make(int t)
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
int parse_set(const char *s, char *out, size_t n)
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

void op_tracer_register(int line, int t, const char *filter, const char *notrace)
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
int filter_has_other(int t, const char *sym)
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

void op_tracer_set(int line, int t, int notrace, int add, int f)
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

int tracer_unregister(int t)
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

void op_tracer_unregister(int line, int t)
{
	int e = tracer_unregister(t);

	if (e)
		say("op %d err %s", line, errname(e));
	else
		say("op %d ok", line);
}
