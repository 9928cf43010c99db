//! The symmetric key from per-function parts: each function's part of the fingerprint (its
//! record, owner state and trampoline, and the ops slots it owns: its livepatch's and its
//! trampoline's) is hashed once, from one walk under the identity, with every reference to the
//! function itself written as "this function" and its programs numbered within the part; the
//! key of a renaming π is then the hash of those part hashes in π's order followed by the rest
//! of the state walked under π (the static and tracer ops slots, the ops list,
//! `direct_functions`, modules, tracers, locks, threads), and the state's key is the least over
//! the candidate renamings. That replaces one full encoding per renaming with one walk of what
//! π really renames.
//!
//! Exactness: the parts and the rest together describe π(state) completely, so two renamings
//! give the same key exactly when they give the same renamed state; the candidate set of a
//! renamed state is the candidate set renamed (see [`super::symmetry`]), so the least key is a
//! function of the orbit, as the least encoding is. A part cannot be written without naming
//! other functions when it refers to another function (a call site, hash entry, `hash_of` or
//! direct call of another function's) or when some address is stale (stale addresses are
//! numbered across the whole state): such a state is *tangled* and takes the full encoding
//! per renaming, as does a state with one candidate. Both are properties of the orbit, and the
//! two kinds of key are hashed apart ([`DOMAIN`]).

use ftsim_core::fingerprint::{Canon, Fingerprint};
use ftsim_core::hash::DEAD_IP;
use ftsim_core::ids::{FnId, OpsId, OpsLayout, OpsOwner, ProgId, Tid};
use ftsim_core::kernel::{CallSite, Kernel};
use ftsim_core::locks::Lock;
use ftsim_core::machine::Thread;
use ftsim_core::walk::{walk, AddrView, Buf, Field, Fields, Identity, Section, Sink};
use std::hash::Hash;

use super::{hash128, Perm};

/// The id that stands for the function a part belongs to.
const SELF: u16 = 0x7fff;
/// `hash_of` naming the livepatch ops or the trampoline ops of the part's own function.
const SELF_KLP: u16 = 0x7ffe;
const SELF_BPF: u16 = 0x7ffd;
/// The first word of every key computed from parts.
const DOMAIN: u64 = 0x7061_7274_735f_6b65;

/// Reusable buffers of the key from parts.
#[derive(Default)]
pub struct PartsBuf {
    words: Vec<u64>,
    canon: Canon,
    /// Per function `f`: the hashes of its part (`3f`), its livepatch ops (`3f + 1`) and its
    /// trampoline ops (`3f + 2`).
    hashes: Vec<u128>,
    key_words: Vec<u64>,
}

/// The walk's sink that records the part hashes.
struct Parts<'a> {
    inner: Fingerprint<'a, Vec<u64>>,
    hashes: &'a mut Vec<u128>,
    layout: OpsLayout,
    /// The function of the part being recorded, and the part's index in `hashes`.
    part: Option<(FnId, usize)>,
    /// The state is tangled (see the module docs).
    tangled: bool,
}

impl Parts<'_> {
    fn finish(&mut self) {
        if let Some((_, i)) = self.part.take() {
            self.hashes[i] = hash128(self.inner.out);
            self.inner.out.clear();
        }
    }

    /// An address as a part writes it: "this function" when it is the part's own.
    fn own(&mut self, a: AddrView) -> AddrView {
        if !a.current {
            self.tangled = true;
        }
        match self.part {
            Some((f, _)) if a.f == f => AddrView { f: FnId(SELF), ..a },
            Some(_) => {
                self.tangled = true;
                a
            }
            None => a,
        }
    }
}

impl Sink for Parts<'_> {
    const IGNORES: Fields = <Fingerprint<'static, Vec<u64>> as Sink>::IGNORES;

    fn begin(&mut self, s: Section) {
        self.finish();
        self.part = match s {
            Section::Fn { old, .. } => Some((old, 3 * old.0 as usize)),
            Section::Ops {
                owner: OpsOwner::Klp(f),
                ..
            } => Some((f, 3 * f.0 as usize + 1)),
            Section::Ops {
                owner: OpsOwner::Bpf(f),
                ..
            } => Some((f, 3 * f.0 as usize + 2)),
            _ => None,
        };
        if let Some((_, i)) = self.part {
            if i % 3 == 0 {
                // Programs are numbered within their function's part.
                self.inner.canon.clear();
            }
        }
    }
    fn val(&mut self, f: Field, v: u64) {
        if self.part.is_some() {
            self.inner.val(f, v);
        }
    }
    fn len(&mut self, f: Field, n: usize) {
        if self.part.is_some() {
            self.inner.len(f, n);
        }
    }
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>) {
        let a = a.map(|a| self.own(a));
        if self.part.is_some() {
            self.inner.site(f, site, a);
        }
    }
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        let a = a.map(|a| self.own(a));
        if self.part.is_some() {
            self.inner.addr(f, a);
        }
    }
    fn prog(&mut self, f: Field, p: ProgId) {
        if self.part.is_some() {
            self.inner.prog(f, p);
        }
    }
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        let Some((own, _)) = self.part else { return };
        // Only the function's own ip and dead entries can be written without naming another
        // function: at most two distinct entries, and in the same order under any renaming.
        let mut mine = [(0u16, 0u16); 2];
        let mut len = 0;
        for &(ip, n) in pairs {
            let entry = match ip {
                DEAD_IP => (ip, n),
                _ if ip == own.0 => (SELF, n),
                _ => {
                    self.tangled = true;
                    continue;
                }
            };
            mine[len] = entry;
            len += 1;
        }
        self.inner.ips(f, &mine[..len]);
    }
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        let Some((own, _)) = self.part else { return };
        let id = id.map(|x| match self.layout.owner(x) {
            OpsOwner::Klp(g) if g == own => OpsId(SELF_KLP),
            OpsOwner::Bpf(g) if g == own => OpsId(SELF_BPF),
            OpsOwner::Klp(_) | OpsOwner::Bpf(_) | OpsOwner::Tracer(_) => {
                self.tangled = true;
                x
            }
            _ => x,
        });
        self.inner.ops_ref(f, id);
    }
    fn lock(&mut self, _l: Lock, _holder: Tid) {}
    fn hashed<T: Hash>(&mut self, _f: Field, _v: &T) {}
    fn gen(&mut self, _gen: u64, _in_flight: bool) {}
}

/// The least key over `perms` (at least two) computed from parts, or `None` when the state is
/// tangled (see the module docs).
pub(super) fn least_key(
    k: &Kernel,
    threads: &[Thread],
    perms: &[Perm],
    buf: &mut Buf,
    pb: &mut PartsBuf,
) -> Option<u128> {
    let n = k.fns.len();
    pb.hashes.clear();
    pb.hashes.resize(3 * n, 0);
    pb.words.clear();
    let mut parts = Parts {
        inner: Fingerprint::new(&mut pb.words, &mut pb.canon),
        hashes: &mut pb.hashes,
        layout: k.info.layout,
        part: None,
        tangled: false,
    };
    walk(k, threads, &Identity, buf, &mut parts);
    parts.finish();
    if parts.tangled {
        return None;
    }
    let mut best = u128::MAX;
    for p in perms {
        let w = &mut pb.key_words;
        w.clear();
        w.push(DOMAIN);
        for &old in p.functions_inv() {
            for h in &pb.hashes[3 * old as usize..3 * old as usize + 3] {
                w.push(*h as u64);
                w.push((*h >> 64) as u64);
            }
        }
        walk(
            k,
            threads,
            p,
            buf,
            &mut Fingerprint::without_functions(w, &mut pb.canon),
        );
        best = best.min(hash128(w));
    }
    Some(best)
}
