//! Colour and strength controls applied after the network: keep the photo's colours (take the
//! brightness from the stylised image and the chroma from the photo, in YCbCr as JPEG defines
//! it), and mix the stylised image with the photo.

use image::RgbImage;

fn to_ycbcr(p: [u8; 3]) -> [f32; 3] {
    let [r, g, b] = p.map(f32::from);
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

fn to_rgb([y, cb, cr]: [f32; 3]) -> [u8; 3] {
    let (cb, cr) = (cb - 128.0, cr - 128.0);
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
    .map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// The brightness (Y) of `stylized` with the colour (Cb, Cr) of `original`; both the same size.
pub fn preserve_color(stylized: &RgbImage, original: &RgbImage) -> RgbImage {
    assert_eq!(stylized.dimensions(), original.dimensions(), "sizes differ");
    let mut out = stylized.clone();
    for (o, p) in out.pixels_mut().zip(original.pixels()) {
        let y = to_ycbcr(o.0)[0];
        let [_, cb, cr] = to_ycbcr(p.0);
        o.0 = to_rgb([y, cb, cr]);
    }
    out
}

/// `original * (1 - strength) + stylized * strength`, rounded; `strength` is clamped to 0..1, so
/// 0 gives the photo back exactly and 1 the stylised image. Both the same size.
pub fn mix(original: &RgbImage, stylized: &RgbImage, strength: f32) -> RgbImage {
    assert_eq!(stylized.dimensions(), original.dimensions(), "sizes differ");
    let a = strength.clamp(0.0, 1.0);
    let mut out = original.clone();
    for (o, s) in out.pixels_mut().zip(stylized.pixels()) {
        for (c, &sv) in o.0.iter_mut().zip(&s.0) {
            *c = (*c as f32 * (1.0 - a) + sv as f32 * a).round() as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn ycbcr_round_trips_within_one_level() {
        for p in [[0, 0, 0], [255, 255, 255], [200, 30, 90], [12, 240, 7]] {
            let q = to_rgb(to_ycbcr(p));
            for (a, b) in p.iter().zip(q) {
                assert!((*a as i32 - b as i32).abs() <= 1, "{p:?} -> {q:?}");
            }
        }
    }

    #[test]
    fn preserving_colour_keeps_brightness_and_takes_hue() {
        let stylized = RgbImage::from_pixel(2, 2, Rgb([100, 100, 100]));
        let original = RgbImage::from_pixel(2, 2, Rgb([200, 40, 40]));
        let out = preserve_color(&stylized, &original);
        let p = out.get_pixel(0, 0).0;
        assert!((to_ycbcr(p)[0] - 100.0).abs() < 1.0);
        assert!(p[0] > p[1] && p[0] > p[2], "not red: {p:?}");
    }

    #[test]
    fn strength_endpoints_are_the_inputs() {
        let a = RgbImage::from_pixel(3, 1, Rgb([10, 20, 30]));
        let b = RgbImage::from_pixel(3, 1, Rgb([200, 100, 0]));
        assert_eq!(mix(&a, &b, 0.0), a);
        assert_eq!(mix(&a, &b, 1.0), b);
        assert_eq!(mix(&a, &b, 0.5).get_pixel(0, 0).0, [105, 60, 15]);
    }
}
