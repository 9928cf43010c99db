//! A canonical state fingerprint: the same on every run and machine, and blind to what cannot
//! affect behaviour (serial numbers of images, programs and sample trampolines are renumbered by
//! first appearance; counters and traces are left out). Used to deduplicate states.

use crate::ids::{Addr, ProgId};
use crate::kernel::{CallSite, Kernel};
use std::hash::{Hash, Hasher};

/// A 128-bit hasher with a fixed, documented mixing function (no per-process keys).
#[derive(Clone, Debug)]
pub struct StableHasher {
    a: u64,
    b: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher {
            a: 0x243f_6a88_85a3_08d3,
            b: 0x1319_8a2e_0370_7344,
        }
    }
}

#[inline]
fn mix(x: u64) -> u64 {
    // splitmix64 finaliser
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl StableHasher {
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.a = mix(self.a ^ w);
        self.b = mix(self.b.rotate_left(17) ^ w ^ 0xa076_1d64_78bd_642f);
    }
    pub fn finish128(&self) -> u128 {
        ((mix(self.a ^ self.b.rotate_left(7)) as u128) << 64)
            | mix(self.b ^ self.a.rotate_left(29)) as u128
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.finish128() as u64
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w) ^ ((chunk.len() as u64) << 56));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.word(i as u64 | 0x100);
    }
    fn write_u16(&mut self, i: u16) {
        self.word(i as u64 | 0x2_0000);
    }
    fn write_u32(&mut self, i: u32) {
        self.word(i as u64 | 0x4_0000_0000);
    }
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
}

/// Renumbers serials by first appearance.
#[derive(Default)]
struct Canon {
    progs: Vec<ProgId>,
    addrs: Vec<Addr>,
}

impl Canon {
    fn prog(&mut self, p: ProgId) -> u64 {
        match self.progs.iter().position(|x| *x == p) {
            Some(i) => i as u64,
            None => {
                self.progs.push(p);
                self.progs.len() as u64 - 1
            }
        }
    }
    fn addr(&mut self, k: &Kernel, a: Addr) -> u64 {
        match a {
            Addr::Image { tr, serial }
                if k.tr(tr)
                    .cur_image
                    .as_ref()
                    .is_some_and(|im| im.serial == serial) =>
            {
                (1 << 40) | tr.0 as u64
            }
            Addr::Sample { f, .. } if k.fstate(f).direct_user == Some(a) => (2 << 40) | f.0 as u64,
            _ => self.stale(a),
        }
    }
    fn stale(&mut self, a: Addr) -> u64 {
        let i = match self.addrs.iter().position(|x| *x == a) {
            Some(i) => i,
            None => {
                self.addrs.push(a);
                self.addrs.len() - 1
            }
        };
        let tr = match a {
            Addr::Image { tr, .. } => tr.0 as u64,
            Addr::Sample { f, .. } => 0x8000 | f.0 as u64,
        };
        (3 << 40) | (tr << 16) | i as u64
    }
}

/// The canonical fingerprint of the whole model state (kernel, owners, locks, threads).
pub fn fingerprint(k: &Kernel) -> u128 {
    let mut h = StableHasher::default();
    let mut c = Canon::default();
    for s in &k.fns {
        let r = &s.rec;
        h.word(
            r.present as u64
                | (r.disabled as u64) << 1
                | (r.ipmodify as u64) << 2
                | (r.direct as u64) << 3
                | (r.count as u64) << 8,
        );
        match r.site {
            CallSite::Nop => h.word(0),
            CallSite::Caller => h.word(1),
            CallSite::Direct(a) => {
                let x = c.addr(k, a);
                h.word(2 | x << 2)
            }
        }
        h.word(s.klp_stack as u64 | (s.klp_registered as u64) << 16 | (s.kprobes as u64) << 20);
        match s.direct_user {
            Some(_) => h.word(1 | (s.direct_busy as u64) << 1),
            None => h.word((s.direct_busy as u64) << 1),
        }
        let tr = &s.tr;
        h.word(
            tr.links.len() as u64
                | (tr.flags.call_orig as u64) << 8
                | (tr.flags.orig_stack as u64) << 9
                | (tr.flags.share as u64) << 10
                | (tr.indirect_call as u64) << 11
                | (s.unshare_pending as u64) << 12,
        );
        for (kind, p) in &tr.links {
            let x = c.prog(*p);
            h.word(*kind as u64 | x << 4);
        }
        match &tr.cur_image {
            None => h.word(0xdead),
            Some(im) => {
                h.word(
                    im.call_orig as u64
                        | (im.orig_stack as u64) << 1
                        | (im.progs.len() as u64) << 2,
                );
                for p in &im.progs {
                    let x = c.prog(*p);
                    h.word(x);
                }
            }
        }
    }
    for o in &k.ops {
        h.word(
            o.flags as u64
                | (o.func_set as u64) << 16
                | (o.trampoline_set as u64) << 17
                | (o.hash_of.map_or(0xffff, |x| x.0) as u64) << 18,
        );
        for &(ip, n) in o.filter.raw() {
            h.word(ip as u64 | (n as u64) << 16 | 1 << 40);
        }
        for &(ip, n) in o.notrace.raw() {
            h.word(ip as u64 | (n as u64) << 16 | 2 << 40);
        }
        match o.direct_call {
            None => h.word(0),
            Some(a) => {
                let x = c.addr(k, a);
                h.word(1 | x << 1)
            }
        }
    }
    h.word(0xabcd);
    for op in &k.ops_list {
        h.word(op.0 as u64);
    }
    h.word(0xbcde);
    for e in k.direct_functions.entries() {
        let x = c.addr(k, e.addr);
        h.word(e.ip.0 as u64 | x << 16);
    }
    for m in &k.modules {
        h.word(
            m.loaded as u64
                | (m.live as u64) << 1
                | (m.busy as u64) << 2
                | (m.klp_seen as u64) << 3,
        );
    }
    for t in &k.tracers {
        h.word(t.registered as u64);
    }
    h.word(k.kprobe_ftrace_enabled as u64);
    for (l, t) in &k.locks {
        l.hash(&mut h);
        h.word(*t as u64);
    }
    for th in &k.threads {
        th.stack.hash(&mut h);
        th.pending.hash(&mut h);
        th.stuck.hash(&mut h);
    }
    // Mid-operation, a frame may compare the state generation with one it saved (the
    // rinse-and-repeat accounting): then the generation is behaviour.
    if k.threads.iter().any(|th| !th.stack.is_empty()) {
        h.word(k.gen);
    }
    h.finish128()
}
