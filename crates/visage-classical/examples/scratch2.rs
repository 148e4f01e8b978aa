use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use visage_classical::dataset::*;
use visage_classical::nalgebra::DMatrix;
use visage_classical::verify::*;
use visage_classical::*;
fn main() {
    let root = PathBuf::from("/work/shared/data/lfw");
    let text = std::fs::read_to_string(root.join("pairs.txt")).unwrap();
    let mut pairs = Vec::new();
    for (i, l) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let p = |n: &str, k: &str| root.join("images").join(n).join(format!("{n}_{:04}.jpg", k.parse::<u32>().unwrap()));
        let fold = i / 600;
        if f.len() == 3 { pairs.push((fold, p(f[0], f[1]), p(f[0], f[2]), true)); } else { pairs.push((fold, p(f[0], f[1]), p(f[2], f[3]), false)); }
    }
    let mut paths: Vec<PathBuf> = pairs.iter().flat_map(|p| [p.1.clone(), p.2.clone()]).collect();
    paths.sort(); paths.dedup();
    let index: HashMap<&PathBuf, usize> = paths.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let refs: Vec<PairRef> = pairs.iter().map(|p| PairRef { fold: p.0, a: index[&p.1], b: index[&p.2], same: p.3 }).collect();
    let mut names: HashMap<String, usize> = HashMap::new();
    let people: Vec<usize> = paths.iter().map(|p| { let n = p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned(); let k = names.len(); *names.entry(n).or_insert(k) }).collect();
    let t = Instant::now();
    let crop: u32 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(120);
    let side: u32 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(32);
    let cols: Vec<Vec<f32>> = paths.iter().map(|p| { let g = centre_crop(&load_gray(p, None, &Default::default()).unwrap(), crop, crop); conform(g, p, SizePolicy::Fixed(side, side), &mut None).unwrap().0 }).collect();
    let x = DMatrix::from_fn((side*side) as usize, cols.len(), |r, c| f64::from(cols[c][r]));
    println!("loaded {} in {:?}", paths.len(), t.elapsed());
    for m in [PairMethod::Distance(Metric::Euclidean), PairMethod::Eigenfaces(None, Metric::Euclidean), PairMethod::Eigenfaces(Some(100), Metric::Euclidean), PairMethod::Eigenfaces(Some(100), Metric::Cosine), PairMethod::Fisherfaces(None), PairMethod::PairSvm { rbf: false, gamma: None, c: 1.0 }] {
        let t = Instant::now();
        let r = verify_pairs(&x, &people, &refs, m).unwrap();
        println!("{m:?}: {:.4} ± {:.4} in {:?}", r.mean_accuracy, r.std_accuracy, t.elapsed());
    }
}
