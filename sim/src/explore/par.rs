//! One breadth-first level on several threads, with the results of one thread (see
//! [the engine's docs](mod@super::bfs), "Threads").
//!
//! The frontier is cut into chunks handed out in order. Each transition that leads to a key not
//! in the store (read-only during the level) *claims* the key in a table shared by the workers:
//! the claim holds the least position (chunk, record) that generated the key so far, and a
//! worker checks the state only when its claim is the least yet. At the end of the level each
//! new key's claim is its first generation in frontier order, the one a single thread keeps;
//! a claim taken over by an earlier chunk (two chunks expanded at the same time reached the same
//! state) is marked lost in its chunk. Then the new keys join the store, shard by shard on every
//! thread, while this thread merges the chunks' records in order (the new states' indices, the
//! next frontier, the counts and the first hits).

use super::bfs::{fp, note, props_of, shard, KeyHasher, KeySet, Props, Replay, Search, SHARDS};
use super::{Edge, Scratch, Space};
use ftsim_core::property::Violation;
use std::collections::hash_map::{Entry, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Frontiers smaller than this are expanded on the calling thread.
pub(super) const SMALL: usize = 8;
/// Chunks per thread (small chunks handed out in order balance the load).
const CHUNKS_PER_THREAD: usize = 32;

/// Where a transition was generated in the level: its chunk (bits [`REC_BITS`] and up) and its
/// record in the chunk. Positions order as one thread generates the transitions.
type Pos = u64;
const REC_BITS: u32 = 40;

/// [`Rec::flags`]: the transition leads to a state it claimed (unless lost).
const NEW: u8 = 1;
/// The new state is expanded at the next level.
const KEEP: u8 = 2;
/// The new state has no successor.
const TERMINAL: u8 = 4;

/// One transition a worker keeps, in generation order: those that claimed a new state and
/// those that raised a property.
struct Rec {
    parent: u32,
    label: u32,
    /// Where the violations of `props` and `sprops` seen first in the chunk start in its
    /// `firsts` (they end where the next record's start).
    first: u32,
    /// Properties raised by the transition.
    props: Props,
    /// Properties the claimed state violates.
    sprops: Props,
    flags: u8,
}

/// What a worker hands back for a chunk.
struct Chunk {
    recs: Vec<Rec>,
    /// The records' first violations, in record order (kept apart: most records have none).
    firsts: Vec<Violation>,
    explored: u64,
}

/// A table shard on its own cache lines.
#[repr(align(128))]
struct Padded<T>(T);

type ClaimMap = HashMap<u64, Pos, BuildHasherDefault<KeyHasher>>;

/// The claims of the level, by [`shard`]: each key new to the store and the least position that
/// generated it so far.
struct Claims(Vec<Padded<Mutex<ClaimMap>>>);

impl Claims {
    fn new() -> Claims {
        Claims(
            (0..SHARDS)
                .map(|_| Padded(Mutex::new(ClaimMap::default())))
                .collect(),
        )
    }

    /// True when `pos` is now the least position of `key`: the state is to be checked. The
    /// claim `pos` takes over (of a later chunk) joins `lost`.
    fn claim(&self, key: u64, pos: Pos, lost: &mut Vec<Pos>) -> bool {
        let mut m = self.0[shard(key)].0.lock().unwrap();
        match m.entry(key) {
            Entry::Vacant(v) => {
                v.insert(pos);
                true
            }
            Entry::Occupied(mut o) => {
                let had = *o.get();
                // An earlier chunk, or this one earlier: a duplicate.
                if had >> REC_BITS <= pos >> REC_BITS {
                    return false;
                }
                o.insert(pos);
                lost.push(had);
                true
            }
        }
    }
}

/// A worker's own state across the chunks it takes.
struct Worker<S> {
    replay: Replay<S>,
    sc: Scratch,
    lost: Vec<Pos>,
}

/// What the level's workers share.
struct Shared<'a, P: Space> {
    space: &'a P,
    links: &'a [(u32, u32)],
    store: &'a super::bfs::Store,
    claims: Claims,
    found: Props,
    keep: bool,
}

fn expand_chunk<P: Space>(
    sh: &Shared<'_, P>,
    w: &mut Worker<P::State>,
    items: &[u32],
    chunk: usize,
) -> Chunk {
    let mut recs = Vec::new();
    let mut firsts = Vec::new();
    let mut explored = 0;
    let mut have = sh.found;
    let base = (chunk as u64) << REC_BITS;
    let Worker { replay, sc, lost } = w;
    for parent in items {
        let s = replay.state(sh.space, sh.links, *parent);
        sh.space.expand(s, sc, &mut |e: Edge<'_, P::State>| {
            explored += 1;
            let first = firsts.len() as u32;
            let props = props_of(e.violations, &mut have, &mut firsts);
            let key = fp(e.key);
            let pos = base | recs.len() as u64;
            if sh.store.contains(key) || !sh.claims.claim(key, pos, lost) {
                if props != 0 {
                    recs.push(Rec {
                        parent: *parent,
                        label: e.label,
                        first,
                        props,
                        sprops: 0,
                        flags: 0,
                    });
                }
                return;
            }
            let sprops = props_of(sh.space.check(e.next), &mut have, &mut firsts);
            let keep = sh.keep && !e.terminal;
            recs.push(Rec {
                parent: *parent,
                label: e.label,
                first,
                props,
                sprops,
                flags: NEW | if keep { KEEP } else { 0 } | if e.terminal { TERMINAL } else { 0 },
            });
        });
    }
    assert!(
        (recs.len() as u64) < 1 << REC_BITS,
        "[explore internal bug] too many records in a chunk"
    );
    Chunk {
        recs,
        firsts,
        explored,
    }
}

/// Expands `frontier` (a level of at least [`SMALL`] states) on `threads` threads and merges
/// it into `search` as [`expand_inline`](super::bfs::expand_inline) does; returns how many
/// states are new.
#[allow(clippy::too_many_arguments)]
pub(super) fn level<P: Space>(
    space: &P,
    root: &P::State,
    frontier: &[u32],
    search: &mut Search,
    keep: bool,
    depth: usize,
    threads: usize,
    next: &mut Vec<u32>,
) -> u64 {
    let size = frontier.len().div_ceil(threads * CHUNKS_PER_THREAD).max(1);
    let parts: Vec<&[u32]> = frontier.chunks(size).collect();
    assert!(
        (parts.len() as u64) < 1 << (64 - REC_BITS),
        "[explore internal bug] too many chunks"
    );
    let sh = Shared {
        space,
        links: &search.links,
        store: &search.keys,
        claims: Claims::new(),
        found: search.found,
        keep,
    };
    let taken = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Chunk>>> = parts.iter().map(|_| Mutex::new(None)).collect();
    let workers: Vec<Worker<P::State>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (sh, parts, slots, taken) = (&sh, &parts, &slots, &taken);
                s.spawn(move || {
                    let mut w = Worker {
                        replay: Replay::new(root),
                        sc: Scratch::default(),
                        lost: Vec::new(),
                    };
                    loop {
                        let i = taken.fetch_add(1, Ordering::Relaxed);
                        if i >= parts.len() {
                            break;
                        }
                        let c = expand_chunk(sh, &mut w, parts[i], i);
                        *slots[i].lock().unwrap() = Some(c);
                    }
                    w
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let claims = sh.claims;
    let mut chunks: Vec<Chunk> = slots
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap())
        .collect();
    for w in &workers {
        search.stats.skipped += w.sc.skipped;
        search.stats.renamings += w.sc.renamings;
        for &p in &w.lost {
            let r =
                &mut chunks[(p >> REC_BITS) as usize].recs[(p & ((1 << REC_BITS) - 1)) as usize];
            r.flags &= !NEW;
        }
    }
    drop(workers);
    join(search, claims, &chunks, depth, threads, next)
}

/// The end of a level: the claimed keys join the store, shard by shard on `threads` threads,
/// while this one merges the records of the chunks in order.
fn join(
    search: &mut Search,
    claims: Claims,
    chunks: &[Chunk],
    depth: usize,
    threads: usize,
    next: &mut Vec<u32>,
) -> u64 {
    let Search {
        links,
        keys,
        hits,
        found,
        stats,
    } = search;
    let work: Vec<Mutex<(&mut KeySet, ClaimMap)>> = keys
        .shards
        .iter_mut()
        .zip(claims.0)
        .map(|(k, c)| Mutex::new((k, c.0.into_inner().unwrap())))
        .collect();
    let taken = AtomicUsize::new(0);
    let insert = || loop {
        let i = taken.fetch_add(1, Ordering::Relaxed);
        let Some(m) = work.get(i) else { break };
        let (set, claimed) = &mut *m.lock().unwrap();
        // One by one, as a single thread inserts (the set's capacity is the same): the keys
        // are new.
        for k in claimed.keys() {
            set.insert(*k);
        }
        *claimed = ClaimMap::default();
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(insert);
        }
        let mut new = 0u64;
        for c in chunks {
            stats.explored += c.explored;
            for (i, r) in c.recs.iter().enumerate() {
                let end = c
                    .recs
                    .get(i + 1)
                    .map_or(c.firsts.len(), |n| n.first as usize);
                let first = &c.firsts[r.first as usize..end];
                note(hits, found, r.parent, r.label, depth, r.props, first, false);
                if r.flags & NEW == 0 {
                    continue;
                }
                let idx = links.len() as u32;
                links.push((r.parent, r.label));
                new += 1;
                stats.terminal += (r.flags & TERMINAL != 0) as u64;
                note(hits, found, r.parent, r.label, depth, r.sprops, first, true);
                if r.flags & KEEP != 0 {
                    next.push(idx);
                }
            }
        }
        insert();
        new
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(chunk: u64, rec: u64) -> Pos {
        chunk << REC_BITS | rec
    }

    /// The claim of a key ends at its least position whatever order the chunks run in, and
    /// every claim taken over is reported lost, once.
    #[test]
    fn a_claim_ends_at_the_least_position() {
        let claims = Claims::new();
        let mut lost = Vec::new();
        assert!(claims.claim(7, pos(3, 5), &mut lost));
        assert!(
            !claims.claim(7, pos(3, 9), &mut lost),
            "a second time in a chunk"
        );
        assert!(
            !claims.claim(7, pos(4, 0), &mut lost),
            "after an earlier chunk"
        );
        assert!(
            claims.claim(7, pos(1, 2), &mut lost),
            "taken over by an earlier chunk"
        );
        assert_eq!(lost, vec![pos(3, 5)]);
        assert!(!claims.claim(7, pos(2, 0), &mut lost));
        assert!(claims.claim(7, pos(0, 8), &mut lost));
        assert_eq!(lost, vec![pos(3, 5), pos(1, 2)]);
        // Another key in the same shard is its own.
        let other = 7 | 1 << 20;
        assert_eq!(shard(other), shard(7));
        assert!(claims.claim(other, pos(5, 0), &mut lost));
        let m = claims.0[shard(7)].0.lock().unwrap();
        assert_eq!((m[&7], m[&other], m.len()), (pos(0, 8), pos(5, 0), 2));
    }
}
