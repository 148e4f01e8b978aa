//! dlib's `pyramid_down<2>` for RGB images: a separable 5-tap (1 4 6 4 1)/16 filter that keeps
//! every second row and column, in integer arithmetic, as `extract_image_chip` uses it to shrink
//! big faces before bilinear sampling. Bit-exact with dlib: the sums are exact integers and the
//! single division by 256 truncates.
//!
//! Geometry: an input of `rows × cols` pixels gives `(rows − 3)/2 × (cols − 3)/2` (integer
//! division); output pixel `(c, r)` is centred on input pixel `(2c + 2, 2r + 2)`. dlib's own
//! coordinate maps for this pyramid ([`point_down`], [`point_up`]) are not exactly that centring
//! (they carry an offset of (1.25, 0.75)); callers that must agree with dlib use them as they are.

use image::RgbImage;

/// Maps a point of an image to the image one `pyramid_down<2>` level below, as dlib does:
/// `p / 2 − (1.25, 0.75)`. Coordinates in pixels.
pub fn point_down(x: f64, y: f64) -> (f64, f64) {
    (x / 2.0 - 1.25, y / 2.0 - 0.75)
}

/// Inverse of [`point_down`]: `(p + (1.25, 0.75)) · 2`. Coordinates in pixels.
pub fn point_up(x: f64, y: f64) -> (f64, f64) {
    ((x + 1.25) * 2.0, (y + 0.75) * 2.0)
}

/// Size `(width, height)` in pixels of the level below an image of `width × height` pixels:
/// `((w − 3)/2, (h − 3)/2)`, or `(0, 0)` when either side is 8 pixels or less (dlib gives an
/// empty image there).
pub fn down_size(width: u32, height: u32) -> (u32, u32) {
    if width <= 8 || height <= 8 {
        (0, 0)
    } else {
        ((width - 3) / 2, (height - 3) / 2)
    }
}

/// One `pyramid_down<2>` step over the whole image.
pub fn pyramid_down(image: &RgbImage) -> RgbImage {
    pyramid_down_region(image, 0, 0, image.width(), image.height())
}

/// One `pyramid_down<2>` step over the sub-image of `width × height` pixels whose top-left
/// corner is at column `left`, row `top` (all in pixels; the region is first clipped to the
/// image). The result is what dlib gives for `sub_image(img, rect)`, without copying the region.
pub fn pyramid_down_region(
    image: &RgbImage,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
) -> RgbImage {
    let left = left.min(image.width());
    let top = top.min(image.height());
    let width = width.min(image.width() - left);
    let height = height.min(image.height() - top);
    let (out_w, out_h) = down_size(width, height);
    if out_w == 0 || out_h == 0 {
        return RgbImage::new(0, 0);
    }

    let stride = image.width() as usize * 3;
    let src = image.as_raw();
    let (ow, oh) = (out_w as usize, out_h as usize);
    let row_len = ow * 3;
    // Horizontal pass results for the rows the vertical pass reads (rows 0 ..= 2·oh + 2 of the
    // region). Five rows are live at a time, but keeping them all makes each vertical tap a
    // plain slice; at most (h × w/2 × 3) u16s, with the largest sum 16·255 = 4080.
    let rows_needed = 2 * oh + 3;
    let mut horiz = vec![0u16; rows_needed * row_len];
    for (r, out_row) in horiz.chunks_exact_mut(row_len).enumerate() {
        let start = (top as usize + r) * stride + left as usize * 3;
        let row = &src[start..start + (2 * ow + 3) * 3];
        for (c, out) in out_row.chunks_exact_mut(3).enumerate() {
            let p = &row[c * 6..c * 6 + 15];
            for ch in 0..3 {
                let v = |k: usize| u16::from(p[k * 3 + ch]);
                out[ch] = v(0) + 4 * v(1) + 6 * v(2) + 4 * v(3) + v(4);
            }
        }
    }

    let mut out = RgbImage::new(out_w, out_h);
    for (dr, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let base = 2 * dr;
        let rows: [&[u16]; 5] =
            std::array::from_fn(|k| &horiz[(base + k) * row_len..(base + k + 1) * row_len]);
        for (i, o) in out_row.iter_mut().enumerate() {
            // 16 · 4080 = 65280 fits u16 as in dlib, but u32 keeps the sum obviously safe.
            let sum = u32::from(rows[0][i])
                + 4 * u32::from(rows[1][i])
                + 6 * u32::from(rows[2][i])
                + 4 * u32::from(rows[3][i])
                + u32::from(rows[4][i]);
            *o = (sum / 256) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct transcription of the definition, per pixel, for comparison.
    fn reference(img: &RgbImage) -> RgbImage {
        let (w, h) = down_size(img.width(), img.height());
        RgbImage::from_fn(w, h, |c, r| {
            let k = [1u32, 4, 6, 4, 1];
            let mut px = [0u8; 3];
            for (ch, v) in px.iter_mut().enumerate() {
                let mut sum = 0;
                for (dy, ky) in k.iter().enumerate() {
                    let mut row = 0;
                    for (dx, kx) in k.iter().enumerate() {
                        row += kx
                            * u32::from(img.get_pixel(2 * c + dx as u32, 2 * r + dy as u32).0[ch]);
                    }
                    sum += ky * row;
                }
                *v = (sum / 256) as u8;
            }
            image::Rgb(px)
        })
    }

    fn noise(w: u32, h: u32) -> RgbImage {
        let mut state = 0x1234_5678u32;
        RgbImage::from_fn(w, h, |_, _| {
            let mut px = [0u8; 3];
            for v in &mut px {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = (state >> 24) as u8;
            }
            image::Rgb(px)
        })
    }

    #[test]
    fn sizes_follow_dlib() {
        assert_eq!(down_size(11, 12), (4, 4));
        assert_eq!(down_size(100, 51), (48, 24));
        assert_eq!(down_size(8, 100), (0, 0));
        assert_eq!(pyramid_down(&RgbImage::new(8, 30)).dimensions(), (0, 0));
        assert_eq!(pyramid_down(&RgbImage::new(9, 9)).dimensions(), (3, 3));
    }

    #[test]
    fn matches_the_direct_definition() {
        for (w, h) in [(9, 9), (10, 13), (37, 24), (64, 65)] {
            let img = noise(w, h);
            assert_eq!(pyramid_down(&img), reference(&img), "{w}x{h}");
        }
    }

    #[test]
    fn flat_colour_is_preserved() {
        // The weights sum to exactly 256, so a flat colour survives the truncating division.
        let img = RgbImage::from_pixel(20, 20, image::Rgb([255, 128, 1]));
        let down = pyramid_down(&img);
        assert!(down.pixels().all(|p| p.0 == [255, 128, 1]));
    }

    #[test]
    fn region_equals_cropped_copy_and_is_clipped() {
        let img = noise(50, 40);
        let crop = image::imageops::crop_imm(&img, 7, 5, 30, 21).to_image();
        assert_eq!(pyramid_down_region(&img, 7, 5, 30, 21), pyramid_down(&crop));
        let tail = image::imageops::crop_imm(&img, 20, 10, 30, 30).to_image();
        assert_eq!(
            pyramid_down_region(&img, 20, 10, 1000, 1000),
            pyramid_down(&tail)
        );
        assert_eq!(
            pyramid_down_region(&img, 60, 60, 10, 10).dimensions(),
            (0, 0)
        );
    }

    #[test]
    fn point_maps_are_inverse() {
        let (x, y) = point_down(100.0, 50.0);
        assert_eq!((x, y), (48.75, 24.25));
        assert_eq!(point_up(x, y), (100.0, 50.0));
    }
}
