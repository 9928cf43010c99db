//! The breadth-first engine, generic over a [`Space`]: level-synchronous, deduplicated by
//! key, parallel over chunks of a level and merged in chunk order (results never depend on
//! the number of threads).
//!
//! # Memory
//!
//! The store holds, per distinct state, a 64-bit fingerprint (in one of [`SHARDS`] hash sets,
//! chosen by bits of the fingerprint) and a parent link (parent index and transition label, 8
//! bytes); the links give the counterexample paths. The
//! frontier holds no states: a level is a list of indices into the links, and a worker rebuilds
//! each state it expands by replaying its path's last transition from its parent
//! ([`Space::replay`]), keeping the one path it is on (a stack of at most `depth` states).
//! Because a level lists its states in the order of their parents, consecutive states share
//! their ancestors, so the rebuilding costs about one transition per expanded state (the
//! expanded levels hold a small part of the states: each new level is several times the last).
//!
//! # Threads
//!
//! With `--threads` above 1, a level of at least [`par::SMALL`] states is expanded as
//! [`par`] says: in chunks taken in order by the workers, against the store of the earlier
//! levels (read-only) and a table of the level's claims shared by the workers, which gives each
//! new state to its first generation in frontier order and has it checked there (a state is
//! checked twice only when two chunks expanded at the same time reach it and the later one got
//! there first); then the new keys join the store shard by shard on every thread while the
//! chunks' records are merged in order on this one. Every index, count and first hit is the
//! one [`expand_inline`] computes on a single thread.
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
use super::par;
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

/// Shards of the store: a level's new keys join it on every thread at once (see [`par`]).
pub(super) const SHARDS: usize = 64;

/// The shard of a fingerprint: bits 40..46, which the shard's own table reads neither for the
/// bucket (the low bits) nor for the tag (the top 7 bits).
pub(super) fn shard(key: u64) -> usize {
    (key >> 40) as usize % SHARDS
}

/// The fingerprints of the states seen, in [`SHARDS`] sets by [`shard`]. What each set holds,
/// and so its capacity, depends only on the states found, never on the number of threads.
pub(super) struct Store {
    pub(super) shards: Vec<KeySet>,
}

impl Store {
    fn new() -> Store {
        Store {
            shards: (0..SHARDS).map(|_| KeySet::default()).collect(),
        }
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        self.shards[shard(key)].contains(&key)
    }

    pub(super) fn insert(&mut self, key: u64) -> bool {
        self.shards[shard(key)].insert(key)
    }

    /// Bytes of the sets: a key and a control byte per slot.
    fn bytes(&self) -> u64 {
        let slots: usize = self.shards.iter().map(|s| s.capacity()).sum();
        (slots * (std::mem::size_of::<u64>() + 1)) as u64
    }
}

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
    pub(super) keys: Store,
    pub(super) hits: BTreeMap<Property, Hit>,
    pub(super) found: Props,
    pub(super) stats: Stats,
}

/// Notes that the transition `(parent, label)` at `depth` raised `props` (or that the state it
/// leads to violates them, when `state`): counted, and the first of each property kept as its
/// hit, with its violation from `first`.
#[allow(clippy::too_many_arguments)]
pub(super) fn note(
    hits: &mut BTreeMap<Property, Hit>,
    found: &mut Props,
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
        if *found & 1 << i == 0 {
            let v = first
                .iter()
                .find(|v| v.property == *p)
                .expect("[explore internal bug] the first violation of a property was dropped");
            *found |= 1 << i;
            hits.insert(
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
        let h = hits.get_mut(p).unwrap();
        if state {
            h.states += 1;
        } else {
            h.transitions += 1;
        }
    }
}

impl Search {
    #[allow(clippy::too_many_arguments)]
    fn note(
        &mut self,
        parent: u32,
        label: u32,
        depth: usize,
        props: Props,
        first: &[Violation],
        state: bool,
    ) {
        note(
            &mut self.hits,
            &mut self.found,
            parent,
            label,
            depth,
            props,
            first,
            state,
        );
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
        self.keys.bytes() + (self.links.capacity() * std::mem::size_of::<(u32, u32)>()) as u64
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

/// One level on one thread: the decisions [`par::level`] makes on several, made in place (no
/// records, no claims).
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
            // and its capacity must depend only on the states found (as in `par`).
            let key = fp(e.key);
            if search.keys.contains(key) {
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
        keys: Store::new(),
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
        let new = if threads == 1 || frontier.len() < par::SMALL {
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
            par::level(
                space,
                &root,
                &frontier,
                &mut search,
                keep,
                depth,
                threads,
                &mut next,
            )
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
