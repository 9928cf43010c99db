//! The breadth-first engine, generic over a [`Space`]: level-synchronous, deduplicated by
//! key, parallel over chunks of a level and merged in chunk order (results never depend on
//! the number of threads).
//!
//! # Memory
//!
//! The store holds, per distinct state, a 64-bit fingerprint (in a hash set) and a parent link
//! (parent index and transition label, 8 bytes); the links give the counterexample paths. The
//! frontier holds no states: a level is a list of indices into the links, and a worker rebuilds
//! each state it expands by replaying its path's last transition from its parent
//! ([`Space::replay`]), keeping the one path it is on (a stack of at most `depth` states).
//! Because a level lists its states in the order of their parents, consecutive states share
//! their ancestors, so the rebuilding costs about one transition per expanded state (the
//! expanded levels hold a small part of the states: each new level is several times the last).
//!
//! # Fingerprint collisions
//!
//! Two states with the same 64-bit fingerprint count as one: a collision silently drops a
//! state (and what lies beyond it). As TLC says of its own 64-bit fingerprints, with `n`
//! distinct states the probability of any collision is about `n² / 2^65`: about 2·10⁻⁷ for the
//! 2.5 million states of 3 functions at depth 5, 3·10⁻⁴ for 10⁸ states, and 1·10⁻³ at the
//! default bound [`STATES_MAX_DEFAULT`](super::STATES_MAX_DEFAULT) of 2·10⁸ (the fingerprint
//! folds the 128-bit key, a uniform hash, so this is the birthday bound).

use super::os::{cpu_seconds, peak_rss_bytes};
use super::{Edge, ExploreConfig, Level, Scratch, Space, Stats};
use ftsim_core::property::{Property, Violation};
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

/// Fingerprints are already uniform 64-bit hashes: use them as they are.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// The set of the 64-bit fingerprints of the states seen (see the module docs for what a
/// collision costs).
pub(super) type KeySet = HashSet<u64, BuildHasherDefault<KeyHasher>>;

/// The 64-bit fingerprint a 128-bit key is stored as.
pub(super) fn fp(key: u128) -> u64 {
    (key ^ key >> 64) as u64
}

/// Properties as bits, in [`Property::ALL`] order.
pub(super) type Props = u16;

pub(super) fn bit(p: Property) -> Props {
    1 << Property::ALL.iter().position(|x| *x == p).unwrap()
}

/// The property bits of `vs`; the violations of properties not in `have` move to `first`
/// (one per property), and join `have`.
pub(super) fn props_of(vs: Vec<Violation>, have: &mut Props, first: &mut Vec<Violation>) -> Props {
    let mut m = 0;
    for v in vs {
        let b = bit(v.property);
        m |= b;
        if *have & b == 0 {
            *have |= b;
            first.push(v);
        }
    }
    m
}

/// One result of a worker, in generation order. Violations are kept only for the first
/// occurrence of a property in the chunk (no later one can be the first of the level).
pub(super) struct Rec {
    parent: u32,
    label: u32,
    /// Properties raised by the transition.
    props: Props,
    /// Present when the transition leads to a state new to this chunk.
    new: Option<New>,
    /// Where the violations of `props` and `new.props` seen first here start in the chunk's
    /// `firsts` (they end where the next record's start).
    first: u32,
}

pub(super) struct New {
    key: u64,
    /// Expanded at the next level.
    keep: bool,
    terminal: bool,
    /// Properties the new state violates.
    props: Props,
}

/// The first hit of a property: where it was found.
pub struct Hit {
    pub parent: u32,
    pub label: u32,
    pub depth: usize,
    pub violation: Violation,
    pub states: u64,
    pub transitions: u64,
}

pub struct Search {
    pub(super) links: Vec<(u32, u32)>,
    pub(super) keys: KeySet,
    pub(super) hits: BTreeMap<Property, Hit>,
    pub(super) found: Props,
    pub(super) stats: Stats,
}

impl Search {
    fn note(
        &mut self,
        parent: u32,
        label: u32,
        depth: usize,
        props: Props,
        first: &[Violation],
        state: bool,
    ) {
        if props == 0 {
            return;
        }
        for (i, p) in Property::ALL.iter().enumerate() {
            if props & 1 << i == 0 {
                continue;
            }
            if self.found & 1 << i == 0 {
                let v = first
                    .iter()
                    .find(|v| v.property == *p)
                    .expect("[explore internal bug] the first violation of a property was dropped");
                self.found |= 1 << i;
                self.hits.insert(
                    *p,
                    Hit {
                        parent,
                        label,
                        depth,
                        violation: v.clone(),
                        states: 0,
                        transitions: 0,
                    },
                );
            }
            let h = self.hits.get_mut(p).unwrap();
            if state {
                h.states += 1;
            } else {
                h.transitions += 1;
            }
        }
    }

    pub fn path(&self, mut i: u32) -> Vec<u32> {
        let mut v = Vec::new();
        while i != 0 {
            let (p, l) = self.links[i as usize];
            v.push(l);
            i = p;
        }
        v.reverse();
        v
    }

    fn store_bytes(&self) -> u64 {
        (self.keys.capacity() * (std::mem::size_of::<u64>() + 1)
            + self.links.capacity() * std::mem::size_of::<(u32, u32)>()) as u64
    }
}

/// A worker's way back to the states of a level: the path from the initial state to the last
/// state it rebuilt, one state per level (see the module docs).
pub(super) struct Replay<S> {
    /// `(index, state)` from the initial state (index 0) down.
    stack: Vec<(u32, S)>,
    chain: Vec<u32>,
    /// The replay's own scratch: its key computations are not the expansion's, and how many
    /// there are depends on how the level is cut (its statistics are left out).
    sc: Scratch,
}

impl<S: Clone> Replay<S> {
    pub(super) fn new(root: &S) -> Replay<S> {
        Replay {
            stack: vec![(0, root.clone())],
            chain: Vec::new(),
            sc: Scratch::default(),
        }
    }

    /// The state of index `idx`, rebuilt along its parent links.
    pub(super) fn state<P: Space<State = S>>(
        &mut self,
        space: &P,
        links: &[(u32, u32)],
        idx: u32,
    ) -> &S {
        self.chain.clear();
        let mut i = idx;
        while i != 0 {
            self.chain.push(i);
            i = links[i as usize].0;
        }
        self.chain.reverse();
        let same = self
            .chain
            .iter()
            .zip(&self.stack[1..])
            .take_while(|(c, (s, _))| *c == s)
            .count();
        self.stack.truncate(same + 1);
        for &c in &self.chain[same..] {
            let next = space.replay(
                &self.stack.last().unwrap().1,
                links[c as usize].1,
                &mut self.sc,
            );
            self.stack.push((c, next));
        }
        &self.stack.last().unwrap().1
    }
}

/// What a worker hands back for its chunk.
pub(super) struct Chunk {
    recs: Vec<Rec>,
    /// The records' first violations, in record order (kept apart: most records have none).
    firsts: Vec<Violation>,
    explored: u64,
    skipped: u64,
    renamings: u64,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn expand_chunk<P: Space>(
    space: &P,
    root: &P::State,
    links: &[(u32, u32)],
    chunk: &[u32],
    keys: &KeySet,
    found: Props,
    keep: bool,
) -> Chunk {
    let mut sc = Scratch::default();
    let mut replay = Replay::new(root);
    let mut local: KeySet = KeySet::default();
    let mut recs = Vec::new();
    let mut firsts = Vec::new();
    let mut explored = 0;
    let mut have = found;
    for parent in chunk {
        let s = replay.state(space, links, *parent);
        space.expand(s, &mut sc, &mut |e: Edge<'_, P::State>| {
            explored += 1;
            let first = firsts.len() as u32;
            let props = props_of(e.violations, &mut have, &mut firsts);
            let key = fp(e.key);
            if keys.contains(&key) || !local.insert(key) {
                if props != 0 {
                    recs.push(Rec {
                        parent: *parent,
                        label: e.label,
                        props,
                        new: None,
                        first,
                    });
                }
                return;
            }
            let sprops = props_of(space.check(e.next), &mut have, &mut firsts);
            recs.push(Rec {
                parent: *parent,
                label: e.label,
                props,
                new: Some(New {
                    key,
                    keep: keep && !e.terminal,
                    terminal: e.terminal,
                    props: sprops,
                }),
                first,
            });
        });
    }
    Chunk {
        recs,
        firsts,
        explored,
        skipped: sc.skipped,
        renamings: sc.renamings,
    }
}

/// One level on one thread: the same decisions as [`expand_chunk`] followed by the merge, made
/// in place (no records, one key lookup per transition).
#[allow(clippy::too_many_arguments)]
pub(super) fn expand_inline<P: Space>(
    space: &P,
    replay: &mut Replay<P::State>,
    frontier: &[u32],
    search: &mut Search,
    keep: bool,
    depth: usize,
    next: &mut Vec<u32>,
) -> u64 {
    let mut sc = Scratch::default();
    let mut new = 0u64;
    let mut first = Vec::new();
    for parent in frontier {
        let s = replay.state(space, &search.links, *parent);
        space.expand(s, &mut sc, &mut |e: Edge<'_, P::State>| {
            search.stats.explored += 1;
            first.clear();
            let mut have = search.found;
            let props = props_of(e.violations, &mut have, &mut first);
            search.note(*parent, e.label, depth, props, &first, false);
            // A look-up first: the set grows at an insertion when full, even of a key it holds,
            // and its capacity must depend only on the states found, not on the duplicates
            // (the merge of the chunks meets others).
            let key = fp(e.key);
            if search.keys.contains(&key) {
                return;
            }
            search.keys.insert(key);
            let idx = search.links.len() as u32;
            search.links.push((*parent, e.label));
            new += 1;
            search.stats.terminal += e.terminal as u64;
            first.clear();
            let mut have = search.found;
            let sprops = props_of(space.check(e.next), &mut have, &mut first);
            search.note(*parent, e.label, depth, sprops, &first, true);
            if keep && !e.terminal {
                next.push(idx);
            }
        });
    }
    search.stats.skipped += sc.skipped;
    search.stats.renamings += sc.renamings;
    new
}

pub fn bfs<P: Space>(space: &P, cfg: &ExploreConfig, max_levels: u32) -> Search {
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut sc = Scratch::default();
    let root = space.root();
    let mut search = Search {
        links: vec![(u32::MAX, 0)],
        keys: KeySet::default(),
        hits: BTreeMap::new(),
        found: 0,
        stats: Stats::default(),
    };
    search.keys.insert(fp(space.key(&root, &mut sc)));
    let mut first = Vec::new();
    let props = props_of(space.check(&root), &mut 0, &mut first);
    search.note(u32::MAX, 0, 0, props, &first, true);
    search.stats.levels.push(Level {
        expanded: 0,
        new: 1,
    });
    let mut frontier: Vec<u32> = vec![0];
    let mut replay = Replay::new(&root);
    let threads = cfg.threads.max(1);
    let mut level = 0u32;
    while !frontier.is_empty() && level < max_levels {
        level += 1;
        let depth = level as usize;
        // The last level's states are checked but never expanded: do not keep them.
        let keep = level < max_levels;
        let expanded = frontier.len() as u64;
        let mut next = Vec::new();
        let new = if threads == 1 {
            expand_inline(
                space,
                &mut replay,
                &frontier,
                &mut search,
                keep,
                depth,
                &mut next,
            )
        } else {
            let chunks = expand_chunks(space, &root, &frontier, &search, keep, threads);
            merge_chunks(chunks, &mut search, depth, &mut next)
        };
        let bytes = frontier_bytes(&frontier, &next);
        frontier = next;
        if finish_level(
            &mut search,
            expanded,
            new,
            (frontier.len(), bytes),
            cfg,
            level,
            max_levels,
        ) {
            break;
        }
    }
    search.stats.distinct = search.links.len() as u64;
    search.stats.elapsed = start.elapsed();
    search.stats.cpu_s = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    search.stats.peak_rss_bytes = peak_rss_bytes();
    search
}

/// Bytes of a level and the next (indices; the replay stacks are left out).
fn frontier_bytes(frontier: &[u32], next: &Vec<u32>) -> u64 {
    ((frontier.len() + next.capacity()) * std::mem::size_of::<u32>()) as u64
}

/// Records a finished level; true when the search must stop (`states_max`). `(next, bytes)`:
/// the states of the next level, and the bytes of both levels.
pub(super) fn finish_level(
    search: &mut Search,
    expanded: u64,
    new: u64,
    (next, bytes): (usize, u64),
    cfg: &ExploreConfig,
    level: u32,
    max_levels: u32,
) -> bool {
    search.stats.levels.push(Level { expanded, new });
    search.stats.frontier_peak = search.stats.frontier_peak.max(expanded + next as u64);
    search.stats.frontier_bytes = search.stats.frontier_bytes.max(bytes);
    search.stats.store_bytes = search.stats.store_bytes.max(search.store_bytes());
    if search.links.len() as u64 >= cfg.states_max {
        search.stats.truncated = next > 0 && level < max_levels;
        return true;
    }
    false
}

/// One level's frontier, cut into chunks expanded in parallel against the states of earlier
/// levels (read-only); the chunks come back in frontier order.
fn expand_chunks<P: Space>(
    space: &P,
    root: &P::State,
    frontier: &[u32],
    search: &Search,
    keep: bool,
    threads: usize,
) -> Vec<Chunk> {
    let keys = &search.keys;
    let links = &search.links;
    let found = search.found;
    if frontier.len() < 2 {
        vec![expand_chunk(
            space, root, links, frontier, keys, found, keep,
        )]
    } else {
        // Small chunks handed out in order balance the load; merging them in index order
        // keeps the result independent of the number of threads.
        let size = frontier.len().div_ceil(threads * 8).max(1);
        let parts: Vec<&[u32]> = frontier.chunks(size).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Chunk>>> =
            parts.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= parts.len() {
                        break;
                    }
                    let c = expand_chunk(space, root, links, parts[i], keys, found, keep);
                    *slots[i].lock().unwrap() = Some(c);
                });
            }
        });
        slots
            .into_iter()
            .map(|m| m.into_inner().unwrap().unwrap())
            .collect()
    }
}

/// Merges the chunks of a level in order (so the result never depends on the number of
/// threads): the new states join the store, and `next` when kept. Returns how many are new.
fn merge_chunks(chunks: Vec<Chunk>, search: &mut Search, depth: usize, next: &mut Vec<u32>) -> u64 {
    let mut new = 0u64;
    for c in chunks {
        search.stats.explored += c.explored;
        search.stats.skipped += c.skipped;
        search.stats.renamings += c.renamings;
        for (i, r) in c.recs.iter().enumerate() {
            let end = c
                .recs
                .get(i + 1)
                .map_or(c.firsts.len(), |n| n.first as usize);
            let first = &c.firsts[r.first as usize..end];
            search.note(r.parent, r.label, depth, r.props, first, false);
            let Some(n) = &r.new else { continue };
            if search.keys.contains(&n.key) {
                continue; // found first by an earlier chunk of this level
            }
            search.keys.insert(n.key);
            let idx = search.links.len() as u32;
            search.links.push((r.parent, r.label));
            new += 1;
            search.stats.terminal += n.terminal as u64;
            search.note(r.parent, r.label, depth, n.props, first, true);
            if n.keep {
                next.push(idx);
            }
        }
    }
    new
}
