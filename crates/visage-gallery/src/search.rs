//! Exact nearest-neighbour search over a contiguous matrix of 128-d encodings.
//!
//! Distances here are **squared** Euclidean distances (no square root): they rank exactly like
//! Euclidean distances and are cheaper. Convert with `f32::sqrt` before comparing with τ, which
//! is a Euclidean distance.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

/// Length of one encoding (dlib's face-recognition ResNet output), in `f32` values.
pub const DIM: usize = 128;

/// One 128-d face encoding, unitless (dlib's embedding space; not normalised).
pub type Encoding = [f32; DIM];

/// Rows at or above which the exact scan is split over rayon's threads; below it one thread
/// finishes before the others would have started.
const PARALLEL_ROWS: usize = 16_384;

/// Squared Euclidean distance between two 128-d encodings (unitless, squared).
///
/// Eight independent accumulators let the compiler keep one SIMD register of partial sums per
/// lane group instead of a serial dependency chain.
#[inline]
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            let d = ca[i] - cb[i];
            acc[i] += d * d;
        }
    }
    let mut sum = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += (x - y) * (x - y);
    }
    sum
}

/// A search result: a row of the matrix and its **squared** Euclidean distance to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Row index in the [`TemplateMatrix`] (0-based).
    pub row: u32,
    /// Squared Euclidean distance to the query (unitless, squared; take `sqrt` to compare with τ).
    pub squared_distance: f32,
}

impl Eq for Neighbor {}

impl Ord for Neighbor {
    // Total order on distance (NaN-safe), row as tie-break so results are deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        self.squared_distance
            .total_cmp(&other.squared_distance)
            .then(self.row.cmp(&other.row))
    }
}

impl PartialOrd for Neighbor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Encodings stored row after row in one `Vec<f32>` (row `i` is `data[i*128..(i+1)*128]`), with
/// the gallery ids of each row.
#[derive(Debug, Clone, Default)]
pub struct TemplateMatrix {
    data: Vec<f32>,
    template_ids: Vec<i64>,
    person_ids: Vec<i64>,
}

impl TemplateMatrix {
    /// An empty matrix with room for `rows` encodings.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            data: Vec::with_capacity(rows * DIM),
            template_ids: Vec::with_capacity(rows),
            person_ids: Vec::with_capacity(rows),
        }
    }

    /// Appends one encoding with its template and person ids.
    pub fn push(&mut self, encoding: &Encoding, template_id: i64, person_id: i64) {
        self.data.extend_from_slice(encoding);
        self.template_ids.push(template_id);
        self.person_ids.push(person_id);
    }

    /// Number of rows (encodings).
    pub fn len(&self) -> usize {
        self.template_ids.len()
    }

    /// Whether the matrix holds no encoding.
    pub fn is_empty(&self) -> bool {
        self.template_ids.is_empty()
    }

    /// Row `i` as a 128-value slice.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * DIM..(i + 1) * DIM]
    }

    /// The gallery template id of row `i`.
    pub fn template_id(&self, i: usize) -> i64 {
        self.template_ids[i]
    }

    /// The gallery person id of row `i`.
    pub fn person_id(&self, i: usize) -> i64 {
        self.person_ids[i]
    }

    /// The whole row-major buffer (`len() * 128` values).
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Heap memory held by the matrix, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.data.capacity() * 4 + self.template_ids.capacity() * 8 + self.person_ids.capacity() * 8
    }

    /// The `k` nearest rows to `query` by exhaustive scan, nearest first (squared distances).
    ///
    /// Large matrices are scanned in parallel blocks, each keeping its own top-k, then merged.
    pub fn exact_search(&self, query: &[f32], k: usize) -> Vec<Neighbor> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let top = if self.len() >= PARALLEL_ROWS {
            let block = PARALLEL_ROWS / 4;
            self.data
                .par_chunks(block * DIM)
                .enumerate()
                .map(|(b, chunk)| top_k_block(chunk, query, k, (b * block) as u32))
                .reduce(BinaryHeap::new, |mut a, b| {
                    for n in b {
                        push_bounded(&mut a, n, k);
                    }
                    a
                })
        } else {
            top_k_block(&self.data, query, k, 0)
        };
        let mut out = top.into_vec();
        out.sort();
        out
    }
}

/// Top-k of one contiguous block of rows; a max-heap so the worst kept result is at the top.
fn top_k_block(block: &[f32], query: &[f32], k: usize, first_row: u32) -> BinaryHeap<Neighbor> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (i, row) in block.chunks_exact(DIM).enumerate() {
        let d = squared_distance(row, query);
        if heap.len() < k {
            heap.push(Neighbor {
                row: first_row + i as u32,
                squared_distance: d,
            });
        } else if heap.peek().is_some_and(|worst| d < worst.squared_distance) {
            heap.pop();
            heap.push(Neighbor {
                row: first_row + i as u32,
                squared_distance: d,
            });
        }
    }
    heap
}

fn push_bounded(heap: &mut BinaryHeap<Neighbor>, n: Neighbor, k: usize) {
    if heap.len() < k {
        heap.push(n);
    } else if heap.peek().is_some_and(|worst| n < *worst) {
        heap.pop();
        heap.push(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(seed: u32) -> Encoding {
        let mut e = [0.0f32; DIM];
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        for v in e.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *v = (s as f32 / u32::MAX as f32) - 0.5;
        }
        e
    }

    #[test]
    fn squared_distance_matches_naive() {
        let (a, b) = (enc(1), enc(2));
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((squared_distance(&a, &b) - naive).abs() < 1e-4);
        assert_eq!(squared_distance(&a, &a), 0.0);
        // Odd lengths use the remainder loop.
        assert!((squared_distance(&[1.0, 2.0, 3.0], &[0.0, 0.0, 0.0]) - 14.0).abs() < 1e-6);
    }

    #[test]
    fn exact_search_finds_sorted_nearest_serial_and_parallel() {
        for rows in [10usize, PARALLEL_ROWS + 123] {
            let mut m = TemplateMatrix::with_capacity(rows);
            for i in 0..rows {
                m.push(&enc(i as u32), i as i64 + 100, (i / 3) as i64);
            }
            let query = enc(7);
            let hits = m.exact_search(&query, 5);
            assert_eq!(hits.len(), 5);
            assert_eq!(hits[0].row, 7);
            assert_eq!(hits[0].squared_distance, 0.0);
            assert!(hits
                .windows(2)
                .all(|w| w[0].squared_distance <= w[1].squared_distance));
            let mut all: Vec<Neighbor> = (0..rows)
                .map(|i| Neighbor {
                    row: i as u32,
                    squared_distance: squared_distance(m.row(i), &query),
                })
                .collect();
            all.sort();
            assert_eq!(hits, all[..5].to_vec());
            assert_eq!(m.template_id(7), 107);
        }
    }

    #[test]
    fn empty_and_zero_k() {
        let m = TemplateMatrix::default();
        assert!(m.exact_search(&enc(1), 3).is_empty());
        let mut m = TemplateMatrix::default();
        m.push(&enc(1), 1, 1);
        assert!(m.exact_search(&enc(1), 0).is_empty());
        assert_eq!(m.exact_search(&enc(1), 10).len(), 1);
    }
}
