//! Identify top-1 over synthetic galleries: exact scan against HNSW.
//!
//! Templates are drawn around cluster centres, 10 per person, ~0.4 apart in Euclidean distance
//! like two photos of one person. Centres (people) lie in a random 32-dimensional subspace of
//! the 128-d space, ~0.9 apart on average, because face encodings vary along far fewer
//! directions than they have coordinates; `--isotropic` draws centres in all 128 dimensions
//! instead (~1.4 apart), a harder case where all people are nearly equidistant. Queries are fresh
//! draws around random centres, so none is in the gallery. Reports build time, query time (mean
//! and p99, one query at a time), memory, and HNSW recall@1 against the exact answer.
//!
//! `cargo run --release -p visage-gallery --example search_bench -- [--sizes 10000,100000,1000000]
//! [--queries 1000] [--ef 64,128] [--intrinsic-dim 32 | --isotropic] [--json]`

use std::time::Instant;

use visage_gallery::hnsw::{Hnsw, HnswParams};
use visage_gallery::{Encoding, TemplateMatrix, DIM};
use visage_rng::SplitMix64 as Rng;

/// Per-dimension spread of isotropic centres: norm ≈ 0.09·√128 ≈ 1.0.
const CENTRE_SIGMA: f32 = 0.09;
/// Mean Euclidean distance between two subspace centres (different people).
const CENTRE_DISTANCE: f32 = 0.9;
/// Per-dimension spread inside a cluster: two templates of one person ≈ 0.025·√256 = 0.4 apart.
const TEMPLATE_SIGMA: f32 = 0.025;
const PER_PERSON: usize = 10;

fn draw(rng: &mut Rng, centre: &[f32]) -> Encoding {
    let mut e = [0.0f32; DIM];
    for (v, c) in e.iter_mut().zip(centre) {
        *v = c + TEMPLATE_SIGMA * rng.normal() as f32;
    }
    e
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let mut sizes = vec![10_000usize, 100_000, 1_000_000];
    let mut queries = 1000usize;
    let mut efs = vec![64usize];
    let mut json = false;
    let mut intrinsic = 32usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let list = |v: Option<String>| -> Vec<usize> {
            v.unwrap_or_default()
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        };
        match a.as_str() {
            "--sizes" => sizes = list(args.next()),
            "--queries" => queries = list(args.next()).first().copied().unwrap_or(queries),
            "--ef" => efs = list(args.next()),
            "--json" => json = true,
            "--isotropic" => intrinsic = 0,
            "--intrinsic-dim" => {
                intrinsic = list(args.next()).first().copied().unwrap_or(intrinsic)
            }
            other => {
                eprintln!("search_bench: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let threads = rayon::current_num_threads();
    if !json {
        let model = if intrinsic == 0 {
            "isotropic centres".to_string()
        } else {
            format!("centres in a {intrinsic}-d subspace")
        };
        println!(
            "threads: {threads}; queries per size: {queries} (exact: at most 200 at 1M); {model}"
        );
        println!("| templates | exact build s | exact query ms (mean / p99) | HNSW build s | ef | HNSW query ms (mean / p99) | recall@1 | matrix MiB | graph MiB | peak RSS MiB |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
    }
    for &n in &sizes {
        let mut rng = Rng::new(n as u64);
        let people = n.div_ceil(PER_PERSON);
        // Basis vectors of ~unit norm; z ~ N(0, s²) per axis gives E|c1 − c2|² = 2·s²·d.
        let basis: Vec<Vec<f32>> = (0..intrinsic)
            .map(|_| {
                (0..DIM)
                    .map(|_| rng.normal() as f32 / (DIM as f32).sqrt())
                    .collect()
            })
            .collect();
        let s = CENTRE_DISTANCE / (2.0 * intrinsic.max(1) as f32).sqrt();
        let centres: Vec<Vec<f32>> = (0..people)
            .map(|_| {
                if intrinsic == 0 {
                    return (0..DIM)
                        .map(|_| CENTRE_SIGMA * rng.normal() as f32)
                        .collect();
                }
                let mut c = vec![0.0f32; DIM];
                for b in &basis {
                    let z = s * rng.normal() as f32;
                    for (v, x) in c.iter_mut().zip(b) {
                        *v += z * x;
                    }
                }
                c
            })
            .collect();
        let t = Instant::now();
        let mut matrix = TemplateMatrix::with_capacity(n);
        for i in 0..n {
            let p = i / PER_PERSON;
            matrix.push(&draw(&mut rng, &centres[p]), i as i64, p as i64);
        }
        let exact_build = t.elapsed().as_secs_f64();
        let probes: Vec<Encoding> = (0..queries)
            .map(|_| {
                let p = rng.below_by_modulo(people);
                draw(&mut rng, &centres[p])
            })
            .collect();
        let exact_queries = if n >= 1_000_000 {
            queries.min(200)
        } else {
            queries
        };
        let mut exact_ms = Vec::with_capacity(queries);
        let mut truth = Vec::with_capacity(queries);
        for (i, q) in probes.iter().enumerate() {
            let t = Instant::now();
            let hit = matrix.exact_search(q, 1);
            if i < exact_queries {
                exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            truth.push(hit[0].row);
        }
        let t = Instant::now();
        let graph = Hnsw::build(&matrix, HnswParams::default());
        let hnsw_build = t.elapsed().as_secs_f64();
        exact_ms.sort_by(f64::total_cmp);
        let exact_mean = exact_ms.iter().sum::<f64>() / exact_ms.len() as f64;
        for &ef in &efs {
            let mut ms = Vec::with_capacity(queries);
            let mut hits = 0usize;
            for (q, &want) in probes.iter().zip(&truth) {
                let t = Instant::now();
                let got = graph.search(&matrix, q, 1, ef);
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                hits += usize::from(got.first().is_some_and(|g| g.row == want));
            }
            ms.sort_by(f64::total_cmp);
            let mean = ms.iter().sum::<f64>() / ms.len() as f64;
            let recall = hits as f64 / queries as f64;
            let matrix_mib = matrix.memory_bytes() as f64 / (1 << 20) as f64;
            let graph_mib = graph.memory_bytes() as f64 / (1 << 20) as f64;
            if json {
                println!(
                    "{{\"templates\":{n},\"intrinsic_dim\":{intrinsic},\"threads\":{threads},\"queries\":{queries},\"exact_build_s\":{exact_build:.3},\"exact_query_ms_mean\":{exact_mean:.4},\"exact_query_ms_p99\":{:.4},\"hnsw_build_s\":{hnsw_build:.3},\"ef\":{ef},\"hnsw_query_ms_mean\":{mean:.4},\"hnsw_query_ms_p99\":{:.4},\"recall_at_1\":{recall:.4},\"matrix_mib\":{matrix_mib:.1},\"graph_mib\":{graph_mib:.1},\"peak_rss_mib\":{:.1}}}",
                    percentile(&exact_ms, 0.99),
                    percentile(&ms, 0.99),
                    peak_rss_mib()
                );
            } else {
                println!(
                    "| {n} | {exact_build:.2} | {exact_mean:.3} / {:.3} | {hnsw_build:.1} | {ef} | {mean:.3} / {:.3} | {recall:.4} | {matrix_mib:.0} | {graph_mib:.0} | {:.0} |",
                    percentile(&exact_ms, 0.99),
                    percentile(&ms, 0.99),
                    peak_rss_mib()
                );
            }
        }
    }
}
