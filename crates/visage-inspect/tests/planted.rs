//! A hand-built network whose unit 0 detects a red plus sign: planted at known places in known
//! images, the scan must name exactly those images and places, and the crops must be the
//! receptive fields cut from the images.

use image::{Rgb, RgbImage};
use visage_inspect::report::collect_patches;
use visage_inspect::{
    scan, FeatureMap, Input, InspectError, Network, Patch, ReceptiveField, ScanOptions, PAD_COLOUR,
    TOP_K,
};

/// conv 3x3/1 pad 1 (2 units) then max pool 2x2/2: the pool's field is 4 pixels, jump 2,
/// starting at -1.
struct PlusDetector;

const PLUS: [[f32; 3]; 3] = [[-1., 1., -1.], [1., 1., 1.], [-1., 1., -1.]];

impl PlusDetector {
    fn conv(img: &RgbImage) -> FeatureMap {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut data = vec![0f32; 2 * w * h];
        for y in 0..h {
            for x in 0..w {
                let mut red = 0.0;
                let mut green = 0.0;
                for (dy, row) in PLUS.iter().enumerate() {
                    for (dx, wt) in row.iter().enumerate() {
                        let (sy, sx) = (y as isize + dy as isize - 1, x as isize + dx as isize - 1);
                        if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                            continue;
                        }
                        let p = img.get_pixel(sx as u32, sy as u32);
                        red += wt * p.0[0] as f32 / 255.0;
                        green += p.0[1] as f32 / 255.0;
                    }
                }
                data[y * w + x] = red.max(0.0);
                data[w * h + y * w + x] = green;
            }
        }
        FeatureMap {
            channels: 2,
            dims: vec![h, w],
            data,
        }
    }

    fn pool(m: &FeatureMap) -> FeatureMap {
        let (h, w) = (m.dims[0], m.dims[1]);
        let (oh, ow) = (h / 2, w / 2);
        let mut data = Vec::with_capacity(m.channels * oh * ow);
        for c in 0..m.channels {
            let p = m.channel(c);
            for y in 0..oh {
                for x in 0..ow {
                    let v = [
                        p[2 * y * w + 2 * x],
                        p[2 * y * w + 2 * x + 1],
                        p[(2 * y + 1) * w + 2 * x],
                        p[(2 * y + 1) * w + 2 * x + 1],
                    ];
                    data.push(v.into_iter().fold(f32::NEG_INFINITY, f32::max));
                }
            }
        }
        FeatureMap {
            channels: m.channels,
            dims: vec![oh, ow],
            data,
        }
    }
}

impl Network for PlusDetector {
    fn layer_names(&self) -> Vec<String> {
        vec!["conv".into(), "pool".into()]
    }

    fn receptive_field(&self, layer: usize) -> ReceptiveField {
        let conv = ReceptiveField::identity(2).then_square(3, 1, 1);
        if layer == 0 {
            conv
        } else {
            conv.then_square(2, 2, 0)
        }
    }

    fn activations(
        &self,
        input: &Input,
        layers: &[usize],
    ) -> Result<Vec<FeatureMap>, InspectError> {
        let Input::Image(img) = input else {
            return Err(InspectError::Axes {
                expected: 2,
                got: input.axes(),
            });
        };
        let conv = Self::conv(img);
        let pool = Self::pool(&conv);
        Ok(layers
            .iter()
            .map(|&l| if l == 0 { conv.clone() } else { pool.clone() })
            .collect())
    }
}

/// 14 images of 24x20 with faint green noise; images 2..=10 carry one red plus of brightness
/// 40 + 20 * i centred at a known place (one touches the top-left border).
/// Which image carries a plus, and its centre (x, y) in pixels.
type Planted = Vec<(usize, (u32, u32))>;

fn images() -> (Vec<RgbImage>, Planted) {
    let mut seed = 12345u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 16) as u8 % 40
    };
    let mut imgs = Vec::new();
    let mut planted = Vec::new();
    for i in 0..14usize {
        let mut img = RgbImage::from_fn(24, 20, |_, _| Rgb([0, rnd(), rnd()]));
        if (2..=10).contains(&i) {
            let centre = if i == 5 {
                (1, 1)
            } else {
                (3 + (i as u32 * 5) % 17, 2 + (i as u32 * 3) % 15)
            };
            let b = (40 + 20 * i) as u8;
            for (dx, dy) in [(0i32, 0i32), (1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (x, y) = ((centre.0 as i32 + dx) as u32, (centre.1 as i32 + dy) as u32);
                img.put_pixel(x, y, Rgb([b, 0, 0]));
            }
            planted.push((i, centre));
        }
        imgs.push(img);
    }
    (imgs, planted)
}

#[test]
fn top9_names_the_planted_patterns_and_crops_their_fields() {
    let (imgs, planted) = images();
    let net = PlusDetector;
    let load = |i: usize| Ok(Input::Image(imgs[i].clone()));
    let everywhere = ScanOptions {
        k: TOP_K,
        interior: false,
    };
    let result = scan(&net, &[1, 0], imgs.len(), everywhere, load, || {}).expect("scan");
    assert!(result.skipped.is_empty());
    let field = net.receptive_field(1);
    assert_eq!(field.axes[0].size, 4);
    assert_eq!(field.axes[0].jump, 2);
    assert_eq!(field.axes[0].offset, -1);

    // Strongest first: the brightest plus (image 10) down to the faintest (image 2).
    let hits = result.layers[0].units[0].sorted();
    assert_eq!(hits.len(), TOP_K);
    let mut expected = planted.clone();
    expected.reverse();
    for (hit, (image, (cx, cy))) in hits.iter().zip(&expected) {
        assert_eq!(hit.image, *image);
        assert_eq!(hit.position, vec![*cy as usize / 2, *cx as usize / 2]);
        let b = (40 + 20 * image) as f32 / 255.0;
        assert!(
            (hit.value - 5.0 * b).abs() < 1e-4,
            "value {} for image {image}",
            hit.value
        );
    }
    // The conv layer sees the same images, at the plus centres exactly.
    let conv_hits = result.layers[1].units[0].sorted();
    for (hit, (image, (cx, cy))) in conv_hits.iter().zip(&expected) {
        assert_eq!(
            (hit.image, hit.position.clone()),
            (*image, vec![*cy as usize, *cx as usize])
        );
    }

    // Crops are the receptive fields, cut from the images; outside pixels are padding.
    let patches = collect_patches(&result, &[vec![0], vec![0]], load).expect("crops");
    let unit = &patches[0].units[0];
    assert_eq!(unit.hits.len(), TOP_K);
    let mut padded = 0;
    for ph in &unit.hits {
        let Patch::Image(crop) = &ph.patch else {
            panic!("image patch")
        };
        let span = field.span(&ph.hit.position);
        assert_eq!(ph.span, span);
        assert_eq!((crop.width(), crop.height()), (4, 4));
        let img = &imgs[ph.hit.image];
        for y in 0..4i64 {
            for x in 0..4i64 {
                let (sy, sx) = (span[0].0 as i64 + y, span[1].0 as i64 + x);
                let inside =
                    sy >= 0 && sx >= 0 && sy < img.height() as i64 && sx < img.width() as i64;
                let want = if inside {
                    *img.get_pixel(sx as u32, sy as u32)
                } else {
                    padded += 1;
                    PAD_COLOUR
                };
                assert_eq!(*crop.get_pixel(x as u32, y as u32), want);
            }
        }
        // The whole plus lies inside its crop: five red pixels.
        let red = crop
            .pixels()
            .filter(|p| p.0[0] > 0 && p.0[1] == 0 && *p != &PAD_COLOUR)
            .count();
        assert_eq!(red, 5);
    }
    // Image 5's plus touches the corner: its field starts at (-1, -1).
    assert_eq!(padded, 7);

    // Ranking only fields inside the image: the corner plus (image 5) can no longer be seen
    // whole, so it falls to the end with a partial response, and every field is inside.
    let inside = scan(&net, &[1], imgs.len(), ScanOptions::default(), load, || {}).expect("scan");
    let hits = inside.layers[0].units[0].sorted();
    let images: Vec<usize> = hits.iter().map(|h| h.image).collect();
    assert_eq!(&images[..8], &[10, 9, 8, 7, 6, 4, 3, 2]);
    assert_eq!(images[8], 5);
    assert!(hits[8].value < 5.0 * (40.0 + 20.0 * 5.0) / 255.0 - 0.1);
    for h in &hits {
        let span = field.span(&h.position);
        assert!(span[0].0 >= 0 && span[0].1 <= 20 && span[1].0 >= 0 && span[1].1 <= 24);
    }
}
