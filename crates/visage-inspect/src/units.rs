//! The top-k inputs per unit: stream a data set through a network once, keeping for every unit
//! of every chosen layer a bounded heap of its strongest responses.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;
use serde::Serialize;

use crate::field::ReceptiveField;
use crate::input::{FeatureMap, Input};
use crate::InspectError;

/// How many entries each unit keeps, as in Zeiler & Fergus's grids.
pub const TOP_K: usize = 9;

/// A network the inspector can look into.
pub trait Network: Sync {
    /// The layers that can be inspected, by name, shallow to deep.
    fn layer_names(&self) -> Vec<String>;

    /// The index (into [`Network::layer_names`]) of a layer given by name or by number.
    fn layer_index(&self, name: &str) -> Result<usize, InspectError> {
        let names = self.layer_names();
        names
            .iter()
            .position(|n| n == name)
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < names.len()))
            .ok_or_else(|| InspectError::Layer {
                name: name.to_string(),
                known: names.join(", "),
            })
    }

    /// What a layer computes, in a few words (empty when the name says it all).
    fn describe_layer(&self, _layer: usize) -> String {
        String::new()
    }

    /// The receptive field of one output position of a layer, in input samples.
    fn receptive_field(&self, layer: usize) -> ReceptiveField;

    /// The activations of the given layers (indices into [`Network::layer_names`]) for one
    /// input, in the order asked.
    fn activations(&self, input: &Input, layers: &[usize])
        -> Result<Vec<FeatureMap>, InspectError>;
}

/// One strong response of a unit: which input, where, how strong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Index of the input in the scanned list.
    pub image: usize,
    /// Output position (layer grid coordinates, outermost axis first).
    pub position: Vec<usize>,
    /// The activation there.
    pub value: f32,
}

impl Hit {
    /// Higher values rank first; ties go to the earlier input, then the earlier position, so
    /// results do not depend on thread scheduling.
    fn rank(&self, other: &Self) -> Ordering {
        self.value
            .total_cmp(&other.value)
            .then_with(|| other.image.cmp(&self.image))
            .then_with(|| other.position.cmp(&self.position))
    }
}

/// Heap key ordered by [`Hit::rank`].
#[derive(Debug, Clone)]
struct Ranked(Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0.rank(&other.0) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank(&other.0)
    }
}

/// The `k` best hits seen so far for one unit; memory stays `O(k)` however many inputs stream by.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    /// An empty list keeping at most `k` hits.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Offers a hit; it is kept if it beats the weakest of the current `k`.
    pub fn push(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Ranked(hit)));
        } else if let Some(Reverse(worst)) = self.heap.peek() {
            if hit.rank(&worst.0) == Ordering::Greater {
                self.heap.pop();
                self.heap.push(Reverse(Ranked(hit)));
            }
        }
    }

    /// Joins another list (from another thread) into this one.
    pub fn merge(&mut self, other: TopK) {
        for Reverse(Ranked(h)) in other.heap {
            self.push(h);
        }
    }

    /// The hits, strongest first.
    pub fn sorted(&self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.iter().map(|r| r.0 .0.clone()).collect();
        v.sort_by(|a, b| b.rank(a));
        v
    }
}

/// The result of a scan for one layer.
#[derive(Debug, Clone)]
pub struct LayerUnits {
    /// Index into the network's layers.
    pub layer: usize,
    /// The layer's name.
    pub name: String,
    /// Its receptive field.
    pub field: ReceptiveField,
    /// One list per unit (channel).
    pub units: Vec<TopK>,
}

/// A whole scan: per layer the top hits of every unit, and the inputs that could not be read.
#[derive(Debug, Clone)]
pub struct ScanResult {
    /// One entry per requested layer, in the order asked.
    pub layers: Vec<LayerUnits>,
    /// Inputs that were skipped, with the reason.
    pub skipped: Vec<(usize, String)>,
}

/// Per-thread accumulator: one [`TopK`] per unit per layer (sized on the first map seen).
type Acc = (Vec<Vec<TopK>>, Vec<(usize, String)>);

fn offer(acc: &mut [Vec<TopK>], maps: &[FeatureMap], image: usize, ctx: &OfferContext) {
    for ((lists, map), field) in acc.iter_mut().zip(maps).zip(&ctx.fields) {
        if lists.is_empty() {
            *lists = vec![TopK::new(ctx.k); map.channels];
        }
        let allowed: Vec<bool> = (0..map.plane_len())
            .map(|i| !ctx.interior || fits(field, &map.position(i), &ctx.extent))
            .collect();
        for (c, list) in lists.iter_mut().enumerate().take(map.channels) {
            // One hit per input and unit: the strongest position, so that one busy image does not
            // fill a unit's whole row.
            let plane = map.channel(c);
            let mut best: Option<usize> = None;
            for (i, v) in plane.iter().enumerate() {
                if allowed[i] && best.is_none_or(|b| v.total_cmp(&plane[b]) == Ordering::Greater) {
                    best = Some(i);
                }
            }
            if let Some(b) = best {
                list.push(Hit {
                    image,
                    position: map.position(b),
                    value: plane[b],
                });
            }
        }
    }
}

/// Whether a position's field stays inside the input as far as it can: entirely inside when it
/// is smaller than the input, covering the whole input otherwise.
pub fn fits(field: &ReceptiveField, position: &[usize], extent: &[usize]) -> bool {
    field
        .span(position)
        .iter()
        .zip(extent)
        .all(|(&(a, b), &n)| {
            let n = n as isize;
            if b - a <= n {
                a >= 0 && b <= n
            } else {
                a <= 0 && b >= n
            }
        })
}

/// What [`offer`] needs besides the maps.
struct OfferContext {
    k: usize,
    interior: bool,
    fields: Vec<ReceptiveField>,
    extent: Vec<usize>,
}

/// How a scan ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Hits kept per unit.
    pub k: usize,
    /// Rank only positions whose receptive field lies inside the input (as far as it fits), so
    /// that units excited by the zero padding at the border do not fill their rows with it.
    pub interior: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            k: TOP_K,
            interior: true,
        }
    }
}

fn merge_acc(mut a: Acc, b: Acc) -> Acc {
    for (la, lb) in a.0.iter_mut().zip(b.0) {
        if la.is_empty() {
            *la = lb;
        } else {
            for (ua, ub) in la.iter_mut().zip(lb) {
                ua.merge(ub);
            }
        }
    }
    a.1.extend(b.1);
    a
}

/// Streams `count` inputs through `net` in parallel, keeping each unit's best hits in the
/// given layers. `load(i)` reads input `i` (an `Err` skips it, with the reason recorded);
/// `progress` is called once per input. Memory is bounded by the heaps plus one input's
/// activations per worker thread.
pub fn scan<N, L, P>(
    net: &N,
    layers: &[usize],
    count: usize,
    options: ScanOptions,
    load: L,
    progress: P,
) -> Result<ScanResult, InspectError>
where
    N: Network + ?Sized,
    L: Fn(usize) -> Result<Input, String> + Sync,
    P: Fn() + Sync,
{
    let names = net.layer_names();
    let fields: Vec<ReceptiveField> = layers.iter().map(|&l| net.receptive_field(l)).collect();
    let empty = || -> Acc { (vec![Vec::new(); layers.len()], Vec::new()) };
    let (acc, mut skipped) = (0..count)
        .into_par_iter()
        .try_fold(empty, |mut acc, i| {
            match load(i) {
                Ok(input) => {
                    let maps = net.activations(&input, layers)?;
                    let ctx = OfferContext {
                        k: options.k,
                        interior: options.interior,
                        fields: fields.clone(),
                        extent: input.extent(),
                    };
                    offer(&mut acc.0, &maps, i, &ctx);
                }
                Err(why) => acc.1.push((i, why)),
            }
            progress();
            Ok::<_, InspectError>(acc)
        })
        .try_reduce(empty, |a, b| Ok(merge_acc(a, b)))?;
    skipped.sort_by_key(|s| s.0);
    Ok(ScanResult {
        layers: layers
            .iter()
            .zip(acc)
            .map(|(&layer, units)| LayerUnits {
                layer,
                name: names.get(layer).cloned().unwrap_or_default(),
                field: net.receptive_field(layer),
                units,
            })
            .collect(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(image: usize, value: f32) -> Hit {
        Hit {
            image,
            position: vec![0],
            value,
        }
    }

    #[test]
    fn keeps_the_best_k_in_order() {
        let mut a = TopK::new(3);
        let mut b = TopK::new(3);
        for i in 0..10 {
            let v = ((i * 7) % 10) as f32;
            if i % 2 == 0 {
                a.push(hit(i, v));
            } else {
                b.push(hit(i, v));
            }
        }
        a.merge(b);
        let values: Vec<f32> = a.sorted().iter().map(|h| h.value).collect();
        assert_eq!(values, vec![9.0, 8.0, 7.0]);
        let mut t = TopK::new(2);
        for i in 0..4 {
            t.push(hit(i, 1.0));
        }
        let images: Vec<usize> = t.sorted().iter().map(|h| h.image).collect();
        assert_eq!(images, vec![0, 1]);
    }
}
