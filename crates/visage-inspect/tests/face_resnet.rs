//! The face ResNet adapter on dlib's real model: the hook returns maps whose grids agree with the
//! receptive-field arithmetic, and a step's output is the same whether captured alone or with
//! others.

use image::{Rgb, RgbImage};
use visage_inspect::{FaceResnetInspector, Input, Network};
use visage_testdata::shared;

#[test]
fn maps_match_the_field_arithmetic() {
    let net = FaceResnetInspector::load(
        &shared().join("models/dlib/dlib_face_recognition_resnet_model_v1.dat"),
    )
    .expect("model");
    let chip = RgbImage::from_fn(150, 150, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let input = Input::Image(chip);
    let layers = [0, 9, 20, 39];
    let maps = net.activations(&input, &layers).expect("activations");
    let expect_side = [72, 35, 17, 8];
    for ((map, &l), side) in maps.iter().zip(&layers).zip(expect_side) {
        let f = net.receptive_field(l);
        // The last output position's field must start inside the chip (the grid and the field
        // arithmetic agree on the stride chain).
        let last = f.span(&[map.dims[0] - 1, map.dims[1] - 1]);
        assert!(
            last[0].0 < 150 && last[0].0 + f.axes[0].jump as isize >= 150 - f.axes[0].size as isize
        );
        assert_eq!(map.dims, vec![side, side], "layer {l}");
        assert!(map.data.iter().all(|v| v.is_finite()));
    }
    let alone = net.activations(&input, &[20]).expect("one layer");
    assert_eq!(alone[0], maps[2]);
    assert_eq!(net.receptive_field(0).axes[0].size, 7);
    assert_eq!(net.receptive_field(20).axes[0].size, 83);
}
