// SPDX-License-Identifier: GPL-2.0
/*
 * ftsim-guest: what its three files share (ftsim-guest.c: the plan, the utilities and main;
 * owners.c: the owner-level operations on the real owners; observe.c: calling the functions,
 * the cleanup check and the kernel's log). The plan's commands are at the top of ftsim-guest.c.
 */
#ifndef FTSIM_GUEST_H
#define FTSIM_GUEST_H

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

extern const char *kind_names[KINDS];
extern const char *prog_names[KINDS];

extern char dir[512];
extern int kmsg_fd;	/* /dev/kmsg, opened once before any observation */
extern struct func funcs[FUNCS_MAX];
extern int nfuncs;
extern struct link links[LINKS_MAX];
extern int tracer_registered[TRACERS_MAX];
extern int tracer_made[TRACERS_MAX];
extern char libbpf_last[1024];

void say(const char *fmt, ...);
__attribute__((noreturn)) void fatal(const char *fmt, ...);
const char *errname(int e);
void sleep_ms(int ms);
int write_file(const char *path, const char *s, int flags);
int read_file(const char *path, char *buf, size_t size);
int insmod(const char *name);
int rmmod(const char *name);
void klp_name(char *buf, size_t n, int f, int slot);
void klp_wait(const char *name);
int slot_free(const int *used, int n, int slot);
void op_klp_enable(int line, int f);
int klp_disable_top(int f);
void op_klp_disable(int line, int f);
void op_kprobe_arm(int line, int f);
int kprobe_disarm_one(int f);
void op_kprobe_disarm(int line, int f);
unsigned long kallsyms_addr(const char *sym);
int direct_ctl(int f, const char *cmd);
unsigned long direct_hits(int f, int which);
void op_direct_register(int line, int f);
void op_direct_modify(int line, int f);
int direct_unregister(int f);
void op_direct_unregister(int line, int f);
int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);
int parse_kind(const char *s);
void op_bpf_link(int line, int kind, int f);
void link_destroy(struct link *l);
void op_bpf_unlink(int line, int kind, int f);
unsigned long long link_hits(struct link *l);
void tracer_path(char *buf, size_t n, int t, const char *file);
void tracer_make(int t);
int parse_set(const char *s, char *out, size_t n);
void op_tracer_register(int line, int t, const char *filter, const char *notrace);
int filter_has_other(int t, const char *sym);
void op_tracer_set(int line, int t, int notrace, int add, int f);
int tracer_unregister(int t);
void op_tracer_unregister(int line, int t);
long call_probe(int f, int *err);
void trace_clear(int t);
int trace_saw(int t, const char *sym);
void observe_one(int line, int f);
void calibrate(void);
int ftrace_is_dead(void);
void cleanup(int id);
void kmsg_open(void);
void kmsg_drain(int line);
int parse_fn(const char *s);
int parse_tracer(const char *s);
void do_op(int line, char *words[], int n);

#endif
