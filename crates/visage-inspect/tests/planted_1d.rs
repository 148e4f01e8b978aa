//! The 1D and 3D paths, through visage-nn's layers: a hand-built signal network whose unit
//! detects a bump, and a volume network whose unit detects a bright cube. Planted at known places
//! in known inputs, the top-9 list names them, and the windows and sub-volumes equal the
//! receptive fields.

use visage_inspect::report::collect_patches;
use visage_inspect::{scan, Input, LayerWindow, Network, Patch, ScanOptions, SequentialInspector};
use visage_nn::grad::{ConvNd, PoolNd};
use visage_nn::layers::{Conv, MaxPool, Relu, Sequential};

const BUMP: [f32; 5] = [-1.0, 1.0, 2.0, 1.0, -1.0];

fn network() -> SequentialInspector {
    let conv = ConvNd::new(1, 1, [5]).with_padding([2]);
    let pool = PoolNd::new([2]).with_stride([2]);
    let net = Sequential::new()
        .push(Conv::from_params(conv, BUMP.to_vec(), vec![0.0]))
        .push(Relu::new())
        .push(MaxPool::new(pool));
    let windows = vec![
        LayerWindow::conv(&conv),
        LayerWindow::Pointwise,
        LayerWindow::pool(&pool),
    ];
    SequentialInspector::new(net, windows, 1).expect("network")
}

#[test]
fn top9_names_planted_bumps_in_signals() {
    let net = network();
    let field = net.receptive_field(2);
    assert_eq!(
        (field.axes[0].size, field.axes[0].jump, field.axes[0].offset),
        (6, 2, -2)
    );
    // 12 flat signals; signals 1..=9 carry a bump of height 0.5 * i centred at 7 + 5 * i.
    let signals: Vec<Vec<f32>> = (0..12)
        .map(|i| {
            let mut s = vec![0.0f32; 64];
            if (1..=9).contains(&i) {
                let c = 7 + 5 * i;
                for (k, b) in BUMP.iter().enumerate() {
                    if *b > 0.0 {
                        s[c + k - 2] = *b * 0.5 * i as f32;
                    }
                }
            }
            s
        })
        .collect();
    let load = |i: usize| Ok(Input::Signal(signals[i].clone()));
    let result = scan(
        &net,
        &[2],
        signals.len(),
        ScanOptions::default(),
        load,
        || {},
    )
    .expect("scan");
    let hits = result.layers[0].units[0].sorted();
    let images: Vec<usize> = hits.iter().map(|h| h.image).collect();
    assert_eq!(images, vec![9, 8, 7, 6, 5, 4, 3, 2, 1]);
    for h in &hits {
        assert_eq!(h.position, vec![(7 + 5 * h.image) / 2]);
        assert!((h.value - 6.0 * 0.5 * h.image as f32).abs() < 1e-4);
    }
    let patches = collect_patches(&result, &[vec![0]], load).expect("crops");
    for ph in &patches[0].units[0].hits {
        let Patch::Signal(w) = &ph.patch else {
            panic!("signal patch")
        };
        let (a, b) = ph.span[0];
        assert_eq!(w.len(), (b - a) as usize);
        let want: Vec<Option<f32>> = (a..b)
            .map(|t| signals[ph.hit.image].get(t as usize).copied())
            .collect();
        assert_eq!(w, &want);
        assert_eq!(w.iter().flatten().filter(|v| **v > 0.0).count(), 3);
    }
}

/// The 3D path: a box filter over volumes, then 2x2x2 max pooling; bright 3x3x3 cubes planted in
/// 9 of 11 volumes are found at their centres and cropped as sub-volumes.
#[test]
fn top9_names_planted_cubes_in_volumes() {
    let conv = ConvNd::new(1, 1, [3, 3, 3]).with_padding([1, 1, 1]);
    let pool = PoolNd::new([2, 2, 2]).with_stride([2, 2, 2]);
    let seq = Sequential::new()
        .push(Conv::from_params(conv, vec![1.0; 27], vec![0.0]))
        .push(Relu::new())
        .push(MaxPool::new(pool));
    let windows = vec![
        LayerWindow::conv(&conv),
        LayerWindow::Pointwise,
        LayerWindow::pool(&pool),
    ];
    let net = SequentialInspector::new(seq, windows, 3).expect("network");
    let field = net.receptive_field(2);
    assert!(field
        .axes
        .iter()
        .all(|a| (a.size, a.jump, a.offset) == (4, 2, -1)));
    let n = 12;
    let centre = |i: usize| [2 + i % 8, 2 + (i * 3) % 8, 2 + (i * 5) % 8];
    let volumes: Vec<Vec<f32>> = (0..11)
        .map(|i| {
            let mut v = vec![0.0f32; n * n * n];
            if (1..=9).contains(&i) {
                let c = centre(i);
                for z in c[0] - 1..=c[0] + 1 {
                    for y in c[1] - 1..=c[1] + 1 {
                        for x in c[2] - 1..=c[2] + 1 {
                            v[(z * n + y) * n + x] = i as f32;
                        }
                    }
                }
            }
            v
        })
        .collect();
    let load = |i: usize| {
        Ok(Input::Volume {
            dims: [n, n, n],
            data: volumes[i].clone(),
        })
    };
    let result = scan(
        &net,
        &[2],
        volumes.len(),
        ScanOptions::default(),
        load,
        || {},
    )
    .expect("scan");
    let hits = result.layers[0].units[0].sorted();
    let images: Vec<usize> = hits.iter().map(|h| h.image).collect();
    assert_eq!(images, vec![9, 8, 7, 6, 5, 4, 3, 2, 1]);
    for h in &hits {
        let want: Vec<usize> = centre(h.image).iter().map(|c| c / 2).collect();
        assert_eq!(h.position, want);
        assert!((h.value - 27.0 * h.image as f32).abs() < 1e-3);
    }
    let patches = collect_patches(&result, &[vec![0]], load).expect("crops");
    for ph in &patches[0].units[0].hits {
        let Patch::Volume { dims, data } = &ph.patch else {
            panic!("volume patch")
        };
        assert_eq!(*dims, [4, 4, 4]);
        let s = &ph.span;
        let mut k = 0;
        for z in s[0].0..s[0].1 {
            for y in s[1].0..s[1].1 {
                for x in s[2].0..s[2].1 {
                    let want =
                        volumes[ph.hit.image][(z as usize * n + y as usize) * n + x as usize];
                    assert_eq!(data[k], Some(want));
                    k += 1;
                }
            }
        }
        assert_eq!(data.iter().flatten().filter(|v| **v > 0.0).count(), 27);
    }
}
