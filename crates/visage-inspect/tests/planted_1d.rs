//! The 1D path: a hand-built signal network (visage-nn's layers) whose unit detects a bump;
//! planted at known places in known signals, the top-9 list names them and the windows equal the
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
