//! A hierarchical navigable small-world graph (Malkov & Yashunin, 2016) over the rows of a
//! [`TemplateMatrix`], for approximate nearest-neighbour search in large galleries.
//!
//! The graph stores only row numbers; the encodings stay in the matrix, so node `i` is row `i`.
//! Every neighbour list sits behind its own mutex: construction inserts rows in parallel (as
//! hnswlib does), and a long-lived process can keep inserting rows as people are enrolled.
//! Distances are **squared** Euclidean distances, like [`crate::search`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard, RwLock};

use rayon::prelude::*;

use crate::search::{squared_distance, Neighbor, TemplateMatrix};

/// Construction parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours kept per node on the upper layers (twice this on layer 0).
    pub m: usize,
    /// Candidate list length while inserting (larger: better graph, slower build).
    pub ef_construction: usize,
    /// Seed of the level draw, so the same rows always give the same graph shape.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 100,
            seed: 0x5649_5341_4745,
        }
    }
}

/// Default candidate list length at query time: recall@1 1.000 at 1M clustered templates in
/// 0.9 ms a query on 2 cores (docs/GALLERY.md); 64 halves the time at recall 0.998.
pub const DEFAULT_EF_SEARCH: usize = 128;

/// Highest layer a node may get; with m = 16, layer 12 needs ~10^14 nodes.
const MAX_LEVEL: u8 = 12;

/// Rows inserted one by one before the parallel phase, so that concurrent inserts start from a
/// connected graph rather than racing on an empty one.
const SEQUENTIAL_PREFIX: usize = 1024;

/// Why a serialised graph was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HNSW index data is invalid: {0}")]
pub struct HnswDecodeError(pub &'static str);

/// Visit marks reused across searches: a mark equal to the current epoch means "seen".
struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    fn new(n: usize) -> Self {
        Self {
            marks: vec![0; n],
            epoch: 0,
        }
    }

    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `i`; true if it was not yet seen in this search.
    #[inline]
    fn insert(&mut self, i: u32) -> bool {
        let slot = &mut self.marks[i as usize];
        if *slot == self.epoch {
            false
        } else {
            *slot = self.epoch;
            true
        }
    }
}

/// The graph. Build it with [`Hnsw::build`], query with [`Hnsw::search`], both against the same
/// [`TemplateMatrix`].
pub struct Hnsw {
    params: HnswParams,
    levels: Vec<u8>,
    /// Layer-0 neighbour lists, one per node (at most 2m each).
    links0: Vec<Mutex<Vec<u32>>>,
    /// Layers 1..=level of each node (`upper[i][l - 1]`); empty for most nodes.
    upper: Vec<Vec<Mutex<Vec<u32>>>>,
    /// Entry node and its level; `None` while the graph is empty.
    entry: RwLock<Option<(u32, u8)>>,
    visited_pool: Mutex<Vec<Visited>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a neighbour list leaves a valid (if stale) list, so poisoning is
    // not a reason to stop searching.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hnsw {
    /// An empty graph.
    pub fn new(params: HnswParams) -> Self {
        let params = HnswParams {
            m: params.m.clamp(2, 255),
            ef_construction: params.ef_construction.max(1),
            seed: params.seed,
        };
        Self {
            params,
            levels: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            entry: RwLock::new(None),
            visited_pool: Mutex::new(Vec::new()),
        }
    }

    /// Builds the graph over every row of `data`, inserting in parallel on rayon's threads.
    pub fn build(data: &TemplateMatrix, params: HnswParams) -> Self {
        let mut graph = Self::new(params);
        let n = data.len();
        graph.levels = (0..n).map(|i| graph.draw_level(i)).collect();
        graph.links0 = (0..n).map(|_| Mutex::new(Vec::new())).collect();
        graph.upper = graph
            .levels
            .iter()
            .map(|&l| (0..l).map(|_| Mutex::new(Vec::new())).collect())
            .collect();
        let prefix = n.min(SEQUENTIAL_PREFIX);
        let mut visited = Visited::new(n);
        for i in 0..prefix {
            graph.link(i as u32, data, &mut visited);
        }
        (prefix..n).into_par_iter().for_each_init(
            || Visited::new(n),
            |visited, i| graph.link(i as u32, data, visited),
        );
        graph
    }

    /// Adds the rows of `data` past the ones already in the graph (rows appended to the matrix
    /// since the graph was built), one by one.
    pub fn extend(&mut self, data: &TemplateMatrix) {
        let start = self.levels.len();
        let mut visited = Visited::new(data.len());
        for i in start..data.len() {
            let level = self.draw_level(i);
            self.levels.push(level);
            self.links0.push(Mutex::new(Vec::new()));
            self.upper
                .push((0..level).map(|_| Mutex::new(Vec::new())).collect());
            self.link(i as u32, data, &mut visited);
        }
    }

    /// Number of nodes (rows covered).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Approximate heap memory of the graph (not the encodings), in bytes.
    pub fn memory_bytes(&self) -> usize {
        let list = std::mem::size_of::<Mutex<Vec<u32>>>();
        let mut bytes = self.levels.capacity()
            + self.links0.capacity() * list
            + self.upper.capacity() * std::mem::size_of::<Vec<Mutex<Vec<u32>>>>();
        for l in &self.links0 {
            bytes += lock(l).capacity() * 4;
        }
        for layers in &self.upper {
            for l in layers {
                bytes += list + lock(l).capacity() * 4;
            }
        }
        bytes
    }

    /// The `k` rows nearest to `query` found by the graph, nearest first, with **squared**
    /// distances. `ef` is the candidate list length (≥ k; larger: better recall, slower).
    pub fn search(
        &self,
        data: &TemplateMatrix,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Vec<Neighbor> {
        let Some((entry, top)) = *self.entry.read().unwrap_or_else(|e| e.into_inner()) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let mut visited = lock(&self.visited_pool)
            .pop()
            .unwrap_or_else(|| Visited::new(self.len()));
        let mut cur = Neighbor {
            row: entry,
            squared_distance: squared_distance(query, data.row(entry as usize)),
        };
        for layer in (1..=top).rev() {
            cur = self.greedy(data, query, cur, layer);
        }
        let mut found = self.search_layer(data, query, &[cur], ef.max(k), 0, &mut visited);
        lock(&self.visited_pool).push(visited);
        found.truncate(k);
        found
    }

    fn max_links(&self, layer: u8) -> usize {
        if layer == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    fn draw_level(&self, i: usize) -> u8 {
        let bits = visage_rng::hash(self.params.seed ^ visage_rng::hash(i as u64));
        // Uniform in (0, 1]: never 0, so the logarithm stays finite.
        let u = ((bits >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-u.ln() * ml).floor() as u64).min(MAX_LEVEL as u64) as u8
    }

    fn links(&self, node: u32, layer: u8) -> MutexGuard<'_, Vec<u32>> {
        if layer == 0 {
            lock(&self.links0[node as usize])
        } else {
            lock(&self.upper[node as usize][layer as usize - 1])
        }
    }

    /// Walks `layer` towards `query`, moving to a closer neighbour while there is one.
    fn greedy(
        &self,
        data: &TemplateMatrix,
        query: &[f32],
        mut cur: Neighbor,
        layer: u8,
    ) -> Neighbor {
        loop {
            let mut moved = false;
            for &nb in self.links(cur.row, layer).iter() {
                let d = squared_distance(query, data.row(nb as usize));
                if d < cur.squared_distance {
                    cur = Neighbor {
                        row: nb,
                        squared_distance: d,
                    };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Best-first search of one layer; the `ef` closest nodes found, nearest first.
    fn search_layer(
        &self,
        data: &TemplateMatrix,
        query: &[f32],
        entries: &[Neighbor],
        ef: usize,
        layer: u8,
        visited: &mut Visited,
    ) -> Vec<Neighbor> {
        visited.reset(self.len().max(data.len()));
        let mut candidates: BinaryHeap<Reverse<Neighbor>> = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<Neighbor> = BinaryHeap::with_capacity(ef + 1);
        for &e in entries {
            if visited.insert(e.row) {
                candidates.push(Reverse(e));
                results.push(e);
            }
        }
        while results.len() > ef {
            results.pop();
        }
        while let Some(Reverse(c)) = candidates.pop() {
            let worst = results.peek().map_or(f32::INFINITY, |w| w.squared_distance);
            if c.squared_distance > worst && results.len() >= ef {
                break;
            }
            for &nb in self.links(c.row, layer).iter() {
                if !visited.insert(nb) {
                    continue;
                }
                let d = squared_distance(query, data.row(nb as usize));
                let full = results.len() >= ef;
                if !full || results.peek().is_some_and(|w| d < w.squared_distance) {
                    let n = Neighbor {
                        row: nb,
                        squared_distance: d,
                    };
                    candidates.push(Reverse(n));
                    results.push(n);
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        results.into_sorted_vec()
    }

    /// The paper's neighbour-selection heuristic: keep a candidate only if it is closer to the
    /// base than to every neighbour already kept, which keeps links spread across directions
    /// (and across clusters) instead of all pointing into the nearest clump.
    ///
    /// Lists left short are topped up with the nearest pruned candidates ("keep pruned
    /// connections"): on clustered encodings the heuristic alone keeps one link per cluster,
    /// and the cluster's other members then lose their in-links and become unreachable.
    fn select(data: &TemplateMatrix, sorted: &[Neighbor], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        let mut pruned: Vec<u32> = Vec::new();
        for c in sorted {
            if kept.len() >= m {
                break;
            }
            let row = data.row(c.row as usize);
            if kept
                .iter()
                .all(|&k| squared_distance(row, data.row(k as usize)) > c.squared_distance)
            {
                kept.push(c.row);
            } else {
                pruned.push(c.row);
            }
        }
        for p in pruned {
            if kept.len() >= m {
                break;
            }
            kept.push(p);
        }
        kept
    }

    /// Connects node `id` (already allocated) into the graph.
    fn link(&self, id: u32, data: &TemplateMatrix, visited: &mut Visited) {
        let level = self.levels[id as usize];
        let query = data.row(id as usize);
        let current = *self.entry.read().unwrap_or_else(|e| e.into_inner());
        let Some((entry, top)) = current else {
            let mut slot = self.entry.write().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some((id, level));
                return;
            }
            drop(slot);
            return self.link(id, data, visited);
        };
        let mut cur = Neighbor {
            row: entry,
            squared_distance: squared_distance(query, data.row(entry as usize)),
        };
        for layer in ((level + 1)..=top).rev() {
            cur = self.greedy(data, query, cur, layer);
        }
        let mut entries = vec![cur];
        for layer in (0..=level.min(top)).rev() {
            let found = self.search_layer(
                data,
                query,
                &entries,
                self.params.ef_construction,
                layer,
                visited,
            );
            let chosen = Self::select(data, &found, self.params.m);
            *self.links(id, layer) = chosen.clone();
            let max = self.max_links(layer);
            for nb in chosen {
                let mut list = self.links(nb, layer);
                if list.contains(&id) {
                    continue;
                }
                if list.len() < max {
                    list.push(id);
                } else {
                    let base = data.row(nb as usize);
                    let mut cands: Vec<Neighbor> = list
                        .iter()
                        .chain(std::iter::once(&id))
                        .map(|&r| Neighbor {
                            row: r,
                            squared_distance: squared_distance(base, data.row(r as usize)),
                        })
                        .collect();
                    cands.sort();
                    *list = Self::select(data, &cands, max);
                }
            }
            entries = found;
        }
        if level > top {
            let mut slot = self.entry.write().unwrap_or_else(|e| e.into_inner());
            if slot.is_none_or(|(_, t)| level > t) {
                *slot = Some((id, level));
            }
        }
    }

    /// Serialises the graph (parameters, levels, neighbour lists; not the encodings).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.len() * (2 + 4 * self.params.m * 2));
        out.extend_from_slice(b"VHNSW001");
        out.extend_from_slice(&(self.params.m as u32).to_le_bytes());
        out.extend_from_slice(&(self.params.ef_construction as u32).to_le_bytes());
        out.extend_from_slice(&self.params.seed.to_le_bytes());
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        let entry = *self.entry.read().unwrap_or_else(|e| e.into_inner());
        let (e, t) = entry.map_or((u32::MAX, 0), |(e, t)| (e, t));
        out.extend_from_slice(&e.to_le_bytes());
        out.push(t);
        out.extend_from_slice(&self.levels);
        for node in 0..self.len() as u32 {
            for layer in 0..=self.levels[node as usize] {
                let list = self.links(node, layer);
                out.extend_from_slice(&(list.len() as u16).to_le_bytes());
                for &nb in list.iter() {
                    out.extend_from_slice(&nb.to_le_bytes());
                }
            }
        }
        out
    }

    /// Reads a graph written by [`Hnsw::to_bytes`], checking every id and count.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HnswDecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)? != b"VHNSW001" {
            return Err(HnswDecodeError("bad magic"));
        }
        let m = r.u32()? as usize;
        let ef_construction = r.u32()? as usize;
        let seed = u64::from_le_bytes(
            r.take(8)?
                .try_into()
                .map_err(|_| HnswDecodeError("short"))?,
        );
        let n = r.u32()? as usize;
        let entry = r.u32()?;
        let top = r.take(1)?[0];
        if !(2..=255).contains(&m) {
            return Err(HnswDecodeError("bad m"));
        }
        let mut graph = Self::new(HnswParams {
            m,
            ef_construction,
            seed,
        });
        graph.levels = r.take(n)?.to_vec();
        if graph.levels.iter().any(|&l| l > MAX_LEVEL) {
            return Err(HnswDecodeError("bad level"));
        }
        graph.links0.reserve_exact(n);
        graph.upper.reserve_exact(n);
        for node in 0..n {
            let level = graph.levels[node];
            let mut layers = Vec::with_capacity(level as usize);
            for layer in 0..=level {
                let count = u16::from_le_bytes(
                    r.take(2)?
                        .try_into()
                        .map_err(|_| HnswDecodeError("short"))?,
                ) as usize;
                if count > graph.max_links(layer) {
                    return Err(HnswDecodeError("too many links"));
                }
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    let nb = r.u32()?;
                    if nb as usize >= n {
                        return Err(HnswDecodeError("link out of range"));
                    }
                    list.push(nb);
                }
                if layer == 0 {
                    graph.links0.push(Mutex::new(list));
                } else {
                    layers.push(Mutex::new(list));
                }
            }
            graph.upper.push(layers);
        }
        if r.pos != bytes.len() {
            return Err(HnswDecodeError("trailing bytes"));
        }
        *graph.entry.get_mut().unwrap_or_else(|e| e.into_inner()) = if entry == u32::MAX {
            None
        } else if (entry as usize) < n && graph.levels[entry as usize] == top {
            Some((entry, top))
        } else {
            return Err(HnswDecodeError("bad entry point"));
        };
        Ok(graph)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HnswDecodeError> {
        let end = self.pos.checked_add(n).ok_or(HnswDecodeError("overflow"))?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(HnswDecodeError("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, HnswDecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| HnswDecodeError("short"))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{Encoding, DIM};

    /// Clustered points: `clusters` centres, `per` noisy copies of each.
    fn clustered(clusters: usize, per: usize) -> TemplateMatrix {
        let mut rng = visage_rng::SplitMix64::new(42);
        let mut next = move || rng.uniform() as f32 - 0.5;
        let mut m = TemplateMatrix::with_capacity(clusters * per);
        for c in 0..clusters {
            let centre: Vec<f32> = (0..DIM).map(|_| next() * 0.2).collect();
            for p in 0..per {
                let mut e: Encoding = [0.0; DIM];
                for (v, c) in e.iter_mut().zip(&centre) {
                    *v = c + next() * 0.05;
                }
                m.push(&e, (c * per + p) as i64, c as i64);
            }
        }
        m
    }

    #[test]
    fn recall_against_exact_is_high() {
        let data = clustered(300, 10);
        let graph = Hnsw::build(&data, HnswParams::default());
        assert_eq!(graph.len(), data.len());
        let mut hits = 0;
        let queries = 200;
        for q in 0..queries {
            let query = data.row(q * 13 % data.len()).to_vec();
            let exact = data.exact_search(&query, 1);
            let approx = graph.search(&data, &query, 1, DEFAULT_EF_SEARCH);
            hits += usize::from(exact[0].row == approx[0].row);
        }
        assert!(
            hits as f64 / queries as f64 >= 0.99,
            "recall {hits}/{queries}"
        );
    }

    #[test]
    fn extend_keeps_new_rows_findable_and_bytes_round_trip() {
        let data = clustered(100, 5);
        let mut first = TemplateMatrix::default();
        for i in 0..300 {
            first.push(data.row(i).try_into().unwrap(), i as i64, 0);
        }
        let mut graph = Hnsw::build(&first, HnswParams::default());
        graph.extend(&data);
        assert_eq!(graph.len(), 500);
        for i in [300usize, 420, 499] {
            let found = graph.search(&data, data.row(i), 1, DEFAULT_EF_SEARCH);
            assert_eq!(found[0].row as usize, i);
        }
        let copy = Hnsw::from_bytes(&graph.to_bytes()).expect("round trip");
        assert_eq!(copy.to_bytes(), graph.to_bytes());
        assert_eq!(
            copy.search(&data, data.row(7), 3, 32),
            graph.search(&data, data.row(7), 3, 32)
        );
        let bytes = graph.to_bytes();
        assert!(Hnsw::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Hnsw::from_bytes(b"garbage").is_err());
    }

    #[test]
    fn empty_and_single() {
        let empty = TemplateMatrix::default();
        let g = Hnsw::build(&empty, HnswParams::default());
        assert!(g.search(&empty, &[0.0; DIM], 1, 10).is_empty());
        let mut one = TemplateMatrix::default();
        one.push(&[0.5; DIM], 1, 1);
        let g = Hnsw::build(&one, HnswParams::default());
        assert_eq!(g.search(&one, &[0.0; DIM], 5, 10).len(), 1);
    }
}
