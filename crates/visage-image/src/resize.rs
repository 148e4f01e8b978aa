//! Bilinear resizing exactly as dlib's `resize_image` does it for 8-bit RGB images, and the
//! two pyramid steps the HOG detector builds on it: `pyramid_up` (enlarge about 2x, used for
//! the detector's upsampling) and one `pyramid_down<6>` level (shrink to 5/6).
//!
//! dlib maps output pixel `(c, r)` to input `(c·sx, r·sy)` with `sx = (in_w − 1)/(out_w − 1)`
//! (so the corner pixels line up), and computes most of each row four pixels at a time in
//! `f32` (its SIMD fast path), the last few pixels of the row in `f64`. The two paths round
//! slightly differently; the detector's scores depend on every pixel, so both are
//! reproduced here operation for operation.

use image::RgbImage;

/// How dlib turns an interpolated value into a byte: it truncates (a C cast; the values
/// are never negative). The golden outputs of dlib 20.0.1 confirm truncation, not the
/// round-half-up some dlib versions document.
#[inline]
fn to_byte_f64(v: f64) -> u8 {
    v as i32 as u8
}

/// Resizes `src` to `out_width × out_height` pixels with dlib's bilinear `resize_image`.
///
/// An empty source or an empty target gives an image of the requested size filled with
/// zeros (dlib leaves it untouched).
pub fn resize_bilinear(src: &RgbImage, out_width: u32, out_height: u32) -> RgbImage {
    let mut out = vec![0u8; out_width as usize * out_height as usize * 3];
    resize_bilinear_rows(src, out_width, out_height, 0, &mut out);
    RgbImage::from_raw(out_width, out_height, out).unwrap_or_default()
}

/// Where output columns sample the source, the same for every row.
struct Columns {
    /// Columns computed four at a time in f32: `0..simd_end`.
    simd_end: usize,
    /// Byte offset of the left source pixel (3 · its column), per output column.
    left: Vec<usize>,
    /// f32 horizontal fraction and its complement, for the four-wide columns.
    lr: Vec<f32>,
    inv_lr: Vec<f32>,
    /// f64 fraction and the right source pixel's offset, for the remaining columns.
    lr_f64: Vec<f64>,
    right: Vec<usize>,
}

impl Columns {
    /// dlib's column walk: four lanes starting at `−4·sx + k·sx` (rounded to f32) advance
    /// by `4·sx` (f32) until the last lane's right neighbour leaves the image; the rest of
    /// the row restarts in f64 from `c·sx` and advances by `sx`. The additions' rounding
    /// decides some pixels, so they are repeated exactly.
    fn new(in_w: usize, out_w: usize, x_scale: f64) -> Self {
        let mut cols = Self {
            simd_end: 0,
            left: Vec::with_capacity(out_w),
            lr: Vec::with_capacity(out_w),
            inv_lr: Vec::with_capacity(out_w),
            lr_f64: Vec::new(),
            right: Vec::new(),
        };
        let x0 = -4.0 * x_scale;
        let step = (4.0 * x_scale) as f32;
        let mut lanes = [
            x0 as f32,
            (x0 + x_scale) as f32,
            (x0 + 2.0 * x_scale) as f32,
            (x0 + 3.0 * x_scale) as f32,
        ];
        let mut c = 0usize;
        loop {
            for l in &mut lanes {
                *l += step;
            }
            // Truncation, as the SIMD float-to-int conversion does (the lanes are never
            // negative here).
            let left = lanes.map(|l| l as i64);
            if left[3] + 1 >= in_w as i64 || c + 3 >= out_w {
                break;
            }
            for k in 0..4 {
                let lr = lanes[k] - left[k] as f32;
                cols.left.push(left[k].max(0) as usize * 3);
                cols.lr.push(lr);
                cols.inv_lr.push(1.0 - lr);
            }
            c += 4;
        }
        cols.simd_end = c;
        let mut x = -x_scale + c as f64 * x_scale;
        for _ in c..out_w {
            x += x_scale;
            let left = (x.floor().max(0.0) as usize).min(in_w - 1);
            cols.left.push(left * 3);
            cols.right.push((left + 1).min(in_w - 1) * 3);
            cols.lr_f64.push(x - left as f64);
        }
        cols
    }
}

/// Computes rows `first_row..` of the `out_width × out_height` resize of `src` into `out`
/// (RGB bytes, `out.len() / (3 · out_width)` whole rows), exactly as [`resize_bilinear`]
/// computes them. Lets callers split a resize across threads.
pub fn resize_bilinear_rows(
    src: &RgbImage,
    out_width: u32,
    out_height: u32,
    first_row: u32,
    out: &mut [u8],
) {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (out_width as usize, out_height as usize);
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return;
    }
    let data = src.as_raw();
    let stride = in_w * 3;
    let x_scale = (in_w as f64 - 1.0) / (out_w.saturating_sub(1).max(1)) as f64;
    let y_scale = (in_h as f64 - 1.0) / (out_h.saturating_sub(1).max(1)) as f64;
    let cols = Columns::new(in_w, out_w, x_scale);
    let first_row = first_row as usize;
    let rows = (out.len() / (out_w * 3)).min(out_h.saturating_sub(first_row));

    // Source rows as f32 (plus one float of padding, read but unused by the last pixel),
    // converted once and kept while consecutive output rows use them.
    let mut cache: [(usize, Vec<f32>); 2] = [
        (usize::MAX, vec![0f32; stride + 1]),
        (usize::MAX, vec![0f32; stride + 1]),
    ];
    let load = |row: usize, cache: &mut [(usize, Vec<f32>); 2]| -> usize {
        if let Some(i) = cache.iter().position(|(r, _)| *r == row) {
            return i;
        }
        // Replace the entry that is not the other row in use (the older one).
        let i = usize::from(
            cache[0].0 != usize::MAX && (cache[1].0 == usize::MAX || cache[0].0 > cache[1].0),
        );
        cache[i].0 = row;
        for (d, &v) in cache[i]
            .1
            .iter_mut()
            .zip(&data[row * stride..(row + 1) * stride])
        {
            *d = f32::from(v);
        }
        i
    };

    // dlib steps y by repeated addition too; replay it up to the first requested row.
    let mut y = -y_scale;
    for _ in 0..first_row {
        y += y_scale;
    }
    for out_row in out.chunks_exact_mut(out_w * 3).take(rows) {
        y += y_scale;
        let top = (y.floor().max(0.0) as usize).min(in_h - 1);
        let bottom = (top + 1).min(in_h - 1);
        let tb_frac = y - top as f64;
        let top_row = &data[top * stride..(top + 1) * stride];
        let bottom_row = &data[bottom * stride..(bottom + 1) * stride];
        if cols.simd_end > 0 {
            let ti = load(top, &mut cache);
            let bi = load(bottom, &mut cache);
            simd_columns(
                &cache[ti].1,
                &cache[bi].1,
                tb_frac,
                &cols,
                &mut out_row[..cols.simd_end * 3],
            );
        }

        // The rest of the row in f64, one pixel at a time.
        let tail = out_row[cols.simd_end * 3..].chunks_exact_mut(3);
        let params = cols.left[cols.simd_end..]
            .iter()
            .zip(&cols.right)
            .zip(&cols.lr_f64);
        for (px, ((&l, &r), &lr)) in tail.zip(params) {
            for ch in 0..3 {
                let tl = f64::from(top_row[l + ch]);
                let tr = f64::from(top_row[r + ch]);
                let bl = f64::from(bottom_row[l + ch]);
                let br = f64::from(bottom_row[r + ch]);
                let v = (1.0 - tb_frac) * ((1.0 - lr) * tl + lr * tr)
                    + tb_frac * ((1.0 - lr) * bl + lr * br);
                px[ch] = to_byte_f64(v);
            }
        }
    }
}

/// The four-wide f32 columns of one row: weights are products of the f32 row and column
/// fractions, the value `((tl·w_tl + tr·w_tr) + bl·w_bl) + br·w_br`, truncated. The three
/// channels of a pixel go through the same operations side by side (lanes of one vector),
/// which leaves each channel's arithmetic exactly dlib's.
#[inline]
fn simd_columns(top_row: &[f32], bottom_row: &[f32], tb_frac: f64, cols: &Columns, out: &mut [u8]) {
    let tbf = tb_frac as f32;
    let inv_tbf = (1.0 - tb_frac) as f32;
    // Each pixel reads floats l..l+7 of both rows (two pixels and one padding float).
    let last = top_row.len().min(bottom_row.len()).saturating_sub(7);
    let params = cols.left.iter().zip(cols.lr.iter().zip(&cols.inv_lr));
    for (px, (&l, (&lr, &inv_lr))) in out.chunks_exact_mut(3).zip(params) {
        let l = l.min(last);
        let w = [inv_tbf * inv_lr, inv_tbf * lr, tbf * inv_lr, tbf * lr];
        let (tl, tr) = (&top_row[l..l + 4], &top_row[l + 3..l + 7]);
        let (bl, br) = (&bottom_row[l..l + 4], &bottom_row[l + 3..l + 7]);
        px.copy_from_slice(&blend(w, tl, tr, bl, br)[..3]);
    }
}

/// `((w0·tl + w1·tr) + w2·bl) + w3·br` lane by lane for 4 lanes (3 channels and one
/// unused), truncated to bytes. Each slice holds at least 4 floats.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn blend(w: [f32; 4], tl: &[f32], tr: &[f32], bl: &[f32], br: &[f32]) -> [u8; 4] {
    use std::arch::x86_64::*;
    assert!(tl.len() >= 4 && tr.len() >= 4 && bl.len() >= 4 && br.len() >= 4);
    // SAFETY: each pointer is valid for 4 f32 reads (asserted above); SSE2 is part of
    // the x86_64 baseline.
    unsafe {
        let v = _mm_add_ps(
            _mm_add_ps(
                _mm_add_ps(
                    _mm_mul_ps(_mm_set1_ps(w[0]), _mm_loadu_ps(tl.as_ptr())),
                    _mm_mul_ps(_mm_set1_ps(w[1]), _mm_loadu_ps(tr.as_ptr())),
                ),
                _mm_mul_ps(_mm_set1_ps(w[2]), _mm_loadu_ps(bl.as_ptr())),
            ),
            _mm_mul_ps(_mm_set1_ps(w[3]), _mm_loadu_ps(br.as_ptr())),
        );
        // Truncating conversion; values lie in 0..256, so the saturating packs below keep
        // them unchanged.
        let i = _mm_cvttps_epi32(v);
        let b = _mm_packus_epi16(_mm_packs_epi32(i, i), _mm_setzero_si128());
        (_mm_cvtsi128_si32(b) as u32).to_le_bytes()
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn blend(w: [f32; 4], tl: &[f32], tr: &[f32], bl: &[f32], br: &[f32]) -> [u8; 4] {
    // Truncation, as dlib's conversion does (see `to_byte_f64`).
    std::array::from_fn(|k| {
        (w[0] * tl[k] + w[1] * tr[k] + w[2] * bl[k] + w[3] * br[k]) as i32 as u8
    })
}

/// Size `pyramid_up` gives an image of `width × height` pixels when it inverts one
/// `pyramid_down<2>` step: the image rectangle mapped up with `p ↦ (p + (1.25, 0.75))·2`
/// and rounded, i.e. `(2·width + 2) × (2·height + 1)` pixels. Returns (width, height).
pub fn pyramid_up2_size(width: u32, height: u32) -> (u32, u32) {
    if width == 0 || height == 0 {
        return (0, 0);
    }
    let round = |v: f64| (v + 0.5).floor();
    let right = round((f64::from(width) - 1.0 + 1.25) * 2.0);
    let bottom = round((f64::from(height) - 1.0 + 0.75) * 2.0);
    (right as u32 + 1, bottom as u32 + 1)
}

/// dlib's `pyramid_up(img, out, pyramid_down<2>())`: `src` enlarged to
/// [`pyramid_up2_size`] with [`resize_bilinear`]. This is the upsampling the HOG detector
/// applies for each `upsample` step.
pub fn pyramid_up2(src: &RgbImage) -> RgbImage {
    let (w, h) = pyramid_up2_size(src.width(), src.height());
    resize_bilinear(src, w, h)
}

/// Size of the next `pyramid_down<6>` level of a `width × height` image:
/// `⌊5·width/6⌋ × ⌊5·height/6⌋` pixels. Returns (width, height).
pub fn pyramid_down_5_6_size(width: u32, height: u32) -> (u32, u32) {
    let shrink = |v: u32| (u64::from(v) * 5 / 6) as u32;
    (shrink(width), shrink(height))
}

/// One `pyramid_down<6>` level: `src` shrunk to [`pyramid_down_5_6_size`] with
/// [`resize_bilinear`].
pub fn pyramid_down_5_6(src: &RgbImage) -> RgbImage {
    let (w, h) = pyramid_down_5_6_size(src.width(), src.height());
    resize_bilinear(src, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn same_size_is_the_identity() {
        let img = gradient(37, 23);
        assert_eq!(resize_bilinear(&img, 37, 23), img);
    }

    /// True when every channel of `got` is `want` or one less: f32 weights can sum to a hair
    /// under 1, and dlib truncates.
    fn within_truncation(got: &image::Rgb<u8>, want: &image::Rgb<u8>) -> bool {
        got.0.iter().zip(want.0).all(|(&g, w)| g == w || g + 1 == w)
    }

    #[test]
    fn corners_line_up() {
        let img = gradient(50, 40);
        let out = resize_bilinear(&img, 91, 77);
        assert_eq!(out.get_pixel(0, 0), img.get_pixel(0, 0));
        assert!(within_truncation(
            out.get_pixel(90, 76),
            img.get_pixel(49, 39)
        ));
        assert!(within_truncation(
            out.get_pixel(90, 0),
            img.get_pixel(49, 0)
        ));
    }

    #[test]
    fn constant_images_stay_constant_up_to_truncation() {
        let c = image::Rgb([200, 13, 255]);
        let img = RgbImage::from_pixel(33, 17, c);
        for (w, h) in [(68, 35), (27, 14), (1, 1), (5, 100)] {
            let out = resize_bilinear(&img, w, h);
            assert!(out.pixels().all(|p| within_truncation(p, &c)), "{w}x{h}");
        }
    }

    #[test]
    fn interpolated_values_are_truncated() {
        // Two pixels stretched to three: the middle one is the mean, truncated.
        let img = RgbImage::from_raw(2, 1, vec![0, 10, 255, 1, 11, 254]).unwrap();
        let out = resize_bilinear(&img, 3, 1);
        assert_eq!(out.get_pixel(1, 0).0, [0, 10, 254]);
        // The same through the four-wide path (a wider row), away from the row end.
        let img = RgbImage::from_fn(40, 2, |x, _| [(x * 3) as u8, 0, 255 - x as u8].into());
        let out = resize_bilinear(&img, 79, 2);
        assert_eq!(out.get_pixel(1, 0).0, [1, 0, 254]);
    }

    #[test]
    fn pyramid_sizes() {
        assert_eq!(pyramid_up2_size(500, 300), (1002, 601));
        assert_eq!(pyramid_up2_size(1, 1), (4, 3));
        assert_eq!(pyramid_up2_size(0, 5), (0, 0));
        assert_eq!(pyramid_down_5_6_size(1002, 601), (835, 500));
        assert_eq!(pyramid_down_5_6_size(5, 6), (4, 5));
        let up = pyramid_up2(&gradient(20, 10));
        assert_eq!(up.dimensions(), (42, 21));
        assert_eq!(pyramid_down_5_6(&up).dimensions(), (35, 17));
    }

    #[test]
    fn empty_inputs_do_not_panic() {
        let empty = RgbImage::new(0, 0);
        assert_eq!(resize_bilinear(&empty, 4, 3).dimensions(), (4, 3));
        assert_eq!(resize_bilinear(&gradient(4, 4), 0, 0).dimensions(), (0, 0));
        assert_eq!(pyramid_up2(&empty).dimensions(), (0, 0));
    }
}
