//! A canonical state fingerprint: the same on every run and machine, and blind to what cannot
//! affect behaviour (serial numbers of images, programs and sample trampolines are renumbered by
//! first appearance; counters and traces are left out). Used to deduplicate states.

use crate::ids::{Addr, OpsId, ProgId, Tid};
use crate::kernel::{CallSite, Kernel};
use crate::locks::Lock;
use crate::machine::Thread;
use crate::walk::{
    fields, walk, AddrView, Buf, Field, Fields, HashWords, Identity, Section, Sink, Words,
};
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

/// The renumbering of serials by first appearance: program ids, and addresses that are neither
/// the current image of their trampoline nor the current sample of their direct user.
#[derive(Clone, Debug, Default)]
pub struct Canon {
    progs: Vec<ProgId>,
    addrs: Vec<Addr>,
}

impl Canon {
    pub fn clear(&mut self) {
        self.progs.clear();
        self.addrs.clear();
    }
    fn prog(&mut self, p: ProgId) -> u64 {
        match self.progs.iter().position(|x| *x == p) {
            Some(i) => i as u64,
            None => {
                self.progs.push(p);
                self.progs.len() as u64 - 1
            }
        }
    }
    fn addr(&mut self, a: AddrView) -> u64 {
        match a {
            AddrView {
                current: true,
                sample: false,
                f,
                ..
            } => (1 << 40) | f.0 as u64,
            AddrView {
                current: true,
                sample: true,
                f,
                ..
            } => (2 << 40) | f.0 as u64,
            _ => {
                let i = match self.addrs.iter().position(|x| *x == a.raw) {
                    Some(i) => i,
                    None => {
                        self.addrs.push(a.raw);
                        self.addrs.len() - 1
                    }
                };
                let tr = if a.sample {
                    0x8000 | a.f.0 as u64
                } else {
                    a.f.0 as u64
                };
                (3 << 40) | (tr << 16) | i as u64
            }
        }
    }
}

/// How the fingerprint packs a scalar field: `Skip` (ignored), or or-ed in at `shift`, the word
/// ending after it when `end`.
#[derive(Clone, Copy)]
enum Pack {
    Skip,
    At { shift: u8, end: bool },
}

const fn at(shift: u8) -> Pack {
    Pack::At { shift, end: false }
}

const fn last(shift: u8) -> Pack {
    Pack::At { shift, end: true }
}

/// The fingerprint's word layout (see [`Fingerprint`]).
#[inline]
const fn pack(f: Field) -> Pack {
    use Field::*;
    match f {
        RecPresent => at(0),
        RecDisabled => at(1),
        RecIpmodify => at(2),
        RecDirect => at(3),
        RecCount => last(8),
        KlpStack => at(0),
        KlpRegistered => at(16),
        Kprobes => last(20),
        DirectBusy => last(1),
        TrLinks => at(0),
        TrCallOrig => at(8),
        TrOrigStack => at(9),
        TrShare => at(10),
        TrIndirectCall => at(11),
        UnsharePending => last(12),
        LinkKind => at(0),
        ImageCallOrig => at(0),
        ImageOrigStack => at(1),
        ImageProgs => last(2),
        OpsFlags => at(0),
        OpsFuncSet => at(16),
        OpsTrampolineSet => at(17),
        DirectIp => at(0),
        ModLoaded => at(0),
        ModLive => at(1),
        ModBusy => at(2),
        ModKlpSeen => last(3),
        TracerRegistered | KprobeFtraceEnabled => last(0),
        _ => Pack::Skip,
    }
}

/// The fingerprint as a sink of [`walk`]: the words it mixes, into a hasher or a buffer (the
/// explorer's renamed encoding). Small fields are packed into words ([`pack`]); serials are
/// renumbered by first appearance ([`Canon`]); a record's site is 0 (nop), 1 (caller) or
/// `2 | address << 2`; a direct user is one bit (its address is always its current sample); an
/// absent image is the word `0xdead`; the ops list begins with `0xabcd` and `direct_functions`
/// with `0xbcde`; a hash entry is `ip | n << 16 | tag << 40` (tag 1 filter, 2 notrace); locks
/// and frames go through their `Hash` ([`HashWords`]); mid-operation, the generation and then
/// the dirty list (`0xd1d1 | n << 16`, then one word per entry) follow the threads.
/// `PER_FUNCTION = false`: the same words without the functions and the ops slots they own (see
/// [`Sink::PER_FUNCTION`]).
pub struct Fingerprint<'a, W: Words, const PER_FUNCTION: bool = true> {
    pub out: &'a mut W,
    pub canon: &'a mut Canon,
    cur: u64,
    /// Some thread has an operation in flight (set by [`Sink::gen`], which the walk calls before
    /// the dirty list): the dirty list is then behaviour.
    in_flight: bool,
}

impl<'a, W: Words> Fingerprint<'a, W, true> {
    pub fn new(out: &'a mut W, canon: &'a mut Canon) -> Self {
        canon.clear();
        Fingerprint {
            out,
            canon,
            cur: 0,
            in_flight: false,
        }
    }
}

impl<'a, W: Words> Fingerprint<'a, W, false> {
    /// The fingerprint's words but for the functions and the ops slots they own.
    pub fn without_functions(out: &'a mut W, canon: &'a mut Canon) -> Self {
        canon.clear();
        Fingerprint {
            out,
            canon,
            cur: 0,
            in_flight: false,
        }
    }
}

impl<W: Words, const PER_FUNCTION: bool> Fingerprint<'_, W, PER_FUNCTION> {
    #[inline]
    fn put(&mut self, f: Field, v: u64) {
        if let Pack::At { shift, end } = pack(f) {
            self.cur |= v << shift;
            if end {
                self.out.word(self.cur);
                self.cur = 0;
            }
        }
    }
}

impl<W: Words, const PER_FUNCTION: bool> Sink for Fingerprint<'_, W, PER_FUNCTION> {
    /// Serials are renumbered: an image's own serial counts only as whether an address is that
    /// image (an address's `current`), and the next serials and the trampoline's selector not at
    /// all; the
    /// thread's bookkeeping for its driver (its input, its operation, contention and fault
    /// marks) does not decide what it does next; the serial counters are reset before any state
    /// is compared, and the generation and the dirty list count only while an operation is in
    /// flight ([`Sink::gen`]); the protocol is fixed for a search.
    const IGNORES: Fields = fields(&[
        Field::TrSelector,
        Field::TrNextSerial,
        Field::ThreadInput,
        Field::ThreadOp,
        Field::ThreadContended,
        Field::ThreadFaulted,
        Field::NextProg,
        Field::NextSample,
        Field::Proto,
    ]);
    const PER_FUNCTION: bool = PER_FUNCTION;
    #[inline]
    fn begin(&mut self, s: Section) {
        match s {
            Section::OpsList => self.out.word(0xabcd),
            Section::DirectFunctions => self.out.word(0xbcde),
            _ => {}
        }
    }
    #[inline]
    fn val(&mut self, f: Field, v: u64) {
        if f == Field::TrImage && v == 0 {
            self.out.word(0xdead);
        } else if f == Field::DirtyEntry {
            if self.in_flight {
                self.out.word(v);
            }
        } else {
            self.put(f, v);
        }
    }
    #[inline]
    fn len(&mut self, f: Field, n: usize) {
        if f == Field::Dirty {
            if self.in_flight {
                self.out.word(0xd1d1 | (n as u64) << 16);
            }
        } else {
            self.put(f, n as u64);
        }
    }
    #[inline]
    fn site(&mut self, _f: Field, site: CallSite, a: Option<AddrView>) {
        let w = match site {
            CallSite::Nop => 0,
            CallSite::Caller => 1,
            CallSite::Direct(_) => {
                2 | self
                    .canon
                    .addr(a.expect("[core internal bug] a direct site without an address"))
                    << 2
            }
        };
        self.out.word(w);
    }
    #[inline]
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        match f {
            Field::DirectUser => self.cur |= a.is_some() as u64,
            Field::OpsDirectCall => {
                let w = a.map_or(0, |a| 1 | self.canon.addr(a) << 1);
                self.out.word(w);
            }
            _ => {
                let x = a.map_or(0, |a| self.canon.addr(a));
                self.out.word(self.cur | x << 16);
                self.cur = 0;
            }
        }
    }
    #[inline]
    fn prog(&mut self, f: Field, p: ProgId) {
        let x = self.canon.prog(p);
        if f == Field::LinkProg {
            self.out.word(self.cur | x << 4);
            self.cur = 0;
        } else {
            self.out.word(x);
        }
    }
    #[inline]
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        let tag: u64 = if f == Field::OpsFilter { 1 } else { 2 };
        for &(ip, n) in pairs {
            self.out.word(ip as u64 | (n as u64) << 16 | tag << 40);
        }
    }
    #[inline]
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        if f == Field::OpsHashOf {
            let w = self.cur | (id.map_or(0xffff, |x| x.0) as u64) << 18;
            self.out.word(w);
            self.cur = 0;
        } else {
            self.out.word(id.map_or(0xffff, |x| x.0 as u64));
        }
    }
    #[inline]
    fn lock(&mut self, l: Lock, holder: Tid) {
        l.hash(&mut HashWords(self.out));
        self.out.word(holder as u64);
    }
    #[inline]
    fn hashed<T: Hash>(&mut self, f: Field, v: &T) {
        if matches!(
            f,
            Field::ThreadStack | Field::ThreadPending | Field::ThreadStuck
        ) {
            v.hash(&mut HashWords(self.out));
        }
    }
    /// Mid-operation, a frame may compare the state generation with one it saved (the
    /// rinse-and-repeat accounting): then the generation is behaviour, and so are the records
    /// touched but not yet written back (the dirty list, walked next).
    #[inline]
    fn gen(&mut self, gen: u64, in_flight: bool) {
        self.in_flight = in_flight;
        if in_flight {
            self.out.word(gen);
        }
    }
}

impl Words for StableHasher {
    #[inline]
    fn word(&mut self, w: u64) {
        StableHasher::word(self, w);
    }
}

/// The canonical fingerprint of the whole model state: kernel `k` (owners and locks included) and
/// the executor's `threads`.
pub fn fingerprint(k: &Kernel, threads: &[Thread]) -> u128 {
    let mut h = StableHasher::default();
    let mut c = Canon::default();
    walk(
        k,
        threads,
        &Identity,
        &mut Buf::default(),
        &mut Fingerprint::new(&mut h, &mut c),
    );
    h.finish128()
}
