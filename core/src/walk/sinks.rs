//! The walk's general-purpose sinks: [`Tee`] (two sinks, one walk), the word sinks ([`Words`],
//! [`HashWords`]), equality over a scope of fields ([`Exact`]) and the scope of `Kernel`'s
//! `PartialEq` ([`EqScope`]; the comparison itself is in `core/src/copy.rs`, beside the copies).

use super::{has, AddrView, Field, Fields, Section, Sink, COUNTERS, THREADS};
use crate::ids::{Addr, OpsId, ProgId, Tid};
use crate::kernel::CallSite;
use crate::locks::Lock;
use std::hash::{Hash, Hasher};

/// Two sinks fed by one walk: every field goes to `.0`, then to `.1`. What one walk costs, each
/// sink still gets all of it (the fuzz harness's snapshot takes its words and the footprint
/// this way). Both must agree on [`Sink::PER_FUNCTION`]; the tee ignores what both ignore.
pub struct Tee<A, B>(pub A, pub B);

impl<A: Sink, B: Sink> Sink for Tee<A, B> {
    const IGNORES: Fields = A::IGNORES & B::IGNORES;
    const PER_FUNCTION: bool = {
        assert!(
            A::PER_FUNCTION == B::PER_FUNCTION,
            "a tee's sinks must agree on PER_FUNCTION"
        );
        A::PER_FUNCTION
    };
    #[inline]
    fn wants(&mut self, s: Section) -> bool {
        let want = self.0.wants(s);
        assert!(
            want == self.1.wants(s),
            "[core internal bug] a tee's sinks must agree on the sections they are fed"
        );
        want
    }
    #[inline]
    fn begin(&mut self, s: Section) {
        self.0.begin(s);
        self.1.begin(s);
    }
    #[inline]
    fn val(&mut self, f: Field, v: u64) {
        self.0.val(f, v);
        self.1.val(f, v);
    }
    #[inline]
    fn len(&mut self, f: Field, n: usize) {
        self.0.len(f, n);
        self.1.len(f, n);
    }
    #[inline]
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>) {
        self.0.site(f, site, a);
        self.1.site(f, site, a);
    }
    #[inline]
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        self.0.addr(f, a);
        self.1.addr(f, a);
    }
    #[inline]
    fn prog(&mut self, f: Field, p: ProgId) {
        self.0.prog(f, p);
        self.1.prog(f, p);
    }
    #[inline]
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        self.0.ips(f, pairs);
        self.1.ips(f, pairs);
    }
    #[inline]
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        self.0.ops_ref(f, id);
        self.1.ops_ref(f, id);
    }
    #[inline]
    fn lock(&mut self, l: Lock, holder: Tid) {
        self.0.lock(l, holder);
        self.1.lock(l, holder);
    }
    #[inline]
    fn hashed<T: Hash>(&mut self, f: Field, v: &T) {
        self.0.hashed(f, v);
        self.1.hashed(f, v);
    }
    #[inline]
    fn gen(&mut self, gen: u64, in_flight: bool) {
        self.0.gen(gen, in_flight);
        self.1.gen(gen, in_flight);
    }
}

// ----- words ---------------------------------------------------------------------------------

/// Where a word-producing sink puts its words: a hasher or a buffer.
pub trait Words {
    fn word(&mut self, w: u64);
}

impl Words for Vec<u64> {
    #[inline]
    fn word(&mut self, w: u64) {
        self.push(w);
    }
}

impl<const N: usize> Words for smallvec::SmallVec<[u64; N]> {
    #[inline]
    fn word(&mut self, w: u64) {
        self.push(w);
    }
}

/// A [`Hasher`] that turns each `write_*` call of a derived `Hash` into words, with the mapping
/// the core fingerprint has always used (a byte string in 8-byte chunks tagged by length, a
/// `u8` tagged `0x100`, a `u16` `0x2_0000`, a `u32` `0x4_0000_0000`).
pub struct HashWords<'a, W: Words>(pub &'a mut W);

impl<W: Words> Hasher for HashWords<'_, W> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0
                .word(u64::from_le_bytes(w) ^ ((chunk.len() as u64) << 56));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0.word(i as u64 | 0x100);
    }
    fn write_u16(&mut self, i: u16) {
        self.0.word(i as u64 | 0x2_0000);
    }
    fn write_u32(&mut self, i: u32) {
        self.0.word(i as u64 | 0x4_0000_0000);
    }
    fn write_u64(&mut self, i: u64) {
        self.0.word(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.0.word(i as u64);
    }
}

/// An injective word for an address (the serial included).
#[inline]
pub fn addr_word(a: Addr) -> u64 {
    match a {
        Addr::Image { tr, serial } => (tr.0 as u64) << 32 | serial as u64,
        Addr::Sample { f, serial } => 1 << 63 | (f.0 as u64) << 32 | serial as u64,
    }
}

/// Which fields an [`Exact`] sink compares.
pub trait Scope {
    const IGNORES: Fields;
}

/// Exact equality over every field its scope does not ignore, as an injective word stream:
/// lengths before sequences, raw addresses and program ids. Two states compare equal when their
/// streams are equal.
pub struct Exact<'a, S: Scope, W: Words> {
    pub out: &'a mut W,
    pub scope: std::marker::PhantomData<S>,
}

impl<'a, S: Scope, W: Words> Exact<'a, S, W> {
    pub fn new(out: &'a mut W) -> Self {
        Exact {
            out,
            scope: std::marker::PhantomData,
        }
    }
    #[inline]
    fn skip(f: Field) -> bool {
        has(S::IGNORES, f)
    }
}

impl<S: Scope, W: Words> Sink for Exact<'_, S, W> {
    const IGNORES: Fields = S::IGNORES;
    #[inline]
    fn val(&mut self, f: Field, v: u64) {
        if !Self::skip(f) {
            self.out.word(v);
        }
    }
    #[inline]
    fn len(&mut self, f: Field, n: usize) {
        if !Self::skip(f) {
            self.out.word(n as u64);
        }
    }
    #[inline]
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>) {
        if !Self::skip(f) {
            self.out.word(match site {
                CallSite::Nop => u64::MAX,
                CallSite::Caller => u64::MAX - 1,
                CallSite::Direct(_) => addr_word(a.expect("direct site has an address").raw),
            });
        }
    }
    #[inline]
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        if !Self::skip(f) {
            self.out.word(a.map_or(u64::MAX, |a| addr_word(a.raw)));
        }
    }
    #[inline]
    fn prog(&mut self, f: Field, p: ProgId) {
        if !Self::skip(f) {
            self.out.word(p.0 as u64);
        }
    }
    #[inline]
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        if !Self::skip(f) {
            self.out.word(pairs.len() as u64);
            for &(ip, n) in pairs {
                self.out.word(ip as u64 | (n as u64) << 16);
            }
        }
    }
    #[inline]
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        if !Self::skip(f) {
            self.out.word(id.map_or(u64::MAX, |x| x.0 as u64));
        }
    }
    #[inline]
    fn lock(&mut self, l: Lock, holder: Tid) {
        if !Self::skip(Field::LockHeld) {
            l.hash(&mut HashWords(self.out));
            self.out.word(holder as u64);
        }
    }
    #[inline]
    fn hashed<T: Hash>(&mut self, f: Field, v: &T) {
        if !Self::skip(f) {
            v.hash(&mut HashWords(self.out));
        }
    }
    #[inline]
    fn gen(&mut self, gen: u64, _in_flight: bool) {
        if !Self::skip(Field::Gen) {
            self.out.word(gen);
        }
    }
}

/// The fields `Kernel`'s equality leaves out: the threads (not the kernel's: an executor
/// compares its own beside it) and the counters (the state generation, compared by no driver;
/// the serial counters, as serials are compared where they are used; the records awaiting a code
/// update).
pub struct EqScope;

impl Scope for EqScope {
    const IGNORES: Fields = THREADS | COUNTERS;
}

/// A sink that compares the words it is given with a recorded stream.
pub struct Compare<'a> {
    words: &'a [u64],
    pos: usize,
    equal: bool,
}

impl<'a> Compare<'a> {
    pub fn new(words: &'a [u64]) -> Self {
        Compare {
            words,
            pos: 0,
            equal: true,
        }
    }
    /// Whether every word matched and the recorded stream is used up.
    pub fn equal(&self) -> bool {
        self.equal && self.pos == self.words.len()
    }
}

impl Words for Compare<'_> {
    #[inline]
    fn word(&mut self, w: u64) {
        self.equal &= self.words.get(self.pos) == Some(&w);
        self.pos += 1;
    }
}

const _: () = assert!(Field::ALL.len() <= 128, "field sets are u128 bit sets");
