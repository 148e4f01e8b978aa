//! dlib's 31-plane FHOG features (Felzenszwalb's HOG variant) of an RGB image, computed with
//! the same f32 operations, in the same order, as dlib's `extract_fhog_features`.
//!
//! Exactness matters here: the detector thresholds a long sum of these features, and a
//! last-bit difference in one cell can move a near-threshold window across the threshold.
//! dlib computes most pixels of a row eight at a time (its SIMD path) and the last few
//! pixels one at a time, and the two paths differ in small ways that are reproduced:
//!
//! * channel choice on equal gradient energies: the eight-wide path takes the later
//!   channel, the scalar path the earlier one;
//! * the bilinear vote weights: `vy·(vx·v)` in the eight-wide path, `(vy·vx)·v` in the
//!   scalar one.

use rayon::prelude::*;
use visage_image::RgbImage;

/// Number of feature planes.
pub(crate) const PLANES: usize = 31;

/// The 9 unit directions of the orientation bins, as dlib stores them (f32 from decimal
/// literals that are doubles first).
const DIRS: [(f64, f64); 9] = [
    (1.0000, 0.0000),
    (0.9397, 0.3420),
    (0.7660, 0.6428),
    (0.500, 0.8660),
    (0.1736, 0.9848),
    (-0.1736, 0.9848),
    (-0.5000, 0.8660),
    (-0.7660, 0.6428),
    (-0.9397, 0.3420),
];

/// FHOG planes of one pyramid level, padded for a `filter_rows × filter_cols` filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fhog {
    /// Rows of each plane, cells (feature rows plus `filter_rows − 1` of zero padding).
    pub rows: usize,
    /// Columns of each plane, cells.
    pub cols: usize,
    /// [`PLANES`] planes of `rows × cols` values, plane-major, row-major.
    pub data: Vec<f32>,
    /// First row holding features; rows before it and after `first_row + feature_rows` are zero.
    pub first_row: usize,
    /// Rows holding features.
    pub feature_rows: usize,
}

impl Fhog {
    /// Plane `p` as a `rows × cols` slice.
    pub(crate) fn plane(&self, p: usize) -> &[f32] {
        let n = self.rows * self.cols;
        &self.data[p * n..(p + 1) * n]
    }

    /// True when the image was too small for any feature (fewer than 3 cells a side).
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0 || self.cols == 0
    }
}

/// Computes the FHOG planes of `img` with cells of `cell_size` pixels, padded for a
/// `filter_rows × filter_cols` filter: each plane has `filter_rows − 1` extra rows and
/// `filter_cols − 1` extra columns of zeros, `(filter − 1)/2` of them before the features.
///
/// dlib has a separate routine for 1-pixel cells that is not reproduced: with
/// `cell_size == 1` the features follow the general algorithm below, close to but not
/// bit-identical with dlib's. Its face detectors use 8-pixel cells.
pub(crate) fn extract(
    img: &RgbImage,
    cell_size: usize,
    filter_rows: usize,
    filter_cols: usize,
) -> Fhog {
    let (nr, nc) = (img.height() as usize, img.width() as usize);
    let cell_f = cell_size as f32;
    // dlib rounds in f32: (int)(nr/cell + 0.5).
    let cells_nr = (nr as f32 / cell_f + 0.5) as usize;
    let cells_nc = (nc as f32 / cell_f + 0.5) as usize;
    if cells_nr < 3 || cells_nc < 3 || filter_rows == 0 || filter_cols == 0 {
        return Fhog::default();
    }
    let hog_nr = cells_nr - 2;
    let hog_nc = cells_nc - 2;

    let hist = orientation_histograms(img, cell_size, cells_nr, cells_nc);
    let hist_cols = cells_nc + 2;

    // Energy of each cell: Σ over the 9 unsigned orientations of (h[o] + h[o+9])².
    let mut norm = vec![0f32; cells_nr * cells_nc];
    for r in 0..cells_nr {
        for c in 0..cells_nc {
            let h = &hist[((r + 1) * hist_cols + c + 1) * 18..][..18];
            let mut e = 0f32;
            for o in 0..9 {
                let s = h[o] + h[o + 9];
                e += s * s;
            }
            norm[r * cells_nc + c] = e;
        }
    }

    let rows = hog_nr + filter_rows - 1;
    let cols = hog_nc + filter_cols - 1;
    let (off_r, off_c) = ((filter_rows - 1) / 2, (filter_cols - 1) / 2);
    let plane_len = rows * cols;
    let mut data = vec![0f32; PLANES * plane_len];

    let eps = 0.0001f64 as f32;
    let k02 = 0.2f64 as f32;
    let k01 = 0.1f64 as f32;
    let texture_scale = (2.0 * 0.2357f64) as f32;
    // dlib's four-lane horizontal sum (hadd/dpps): (a0 + a1) + (a2 + a3).
    let sum4 = |a: [f32; 4]| (a[0] + a[1]) + (a[2] + a[3]);
    for y in 0..hog_nr {
        let n0 = &norm[y * cells_nc..];
        let n1 = &norm[(y + 1) * cells_nc..];
        let n2 = &norm[(y + 2) * cells_nc..];
        for x in 0..hog_nc {
            // The four 2x2 blocks around cell (y+1, x+1), in dlib's lane order.
            let z = [
                n1[x + 1] + n1[x + 2] + n2[x + 1] + n2[x + 2] + eps,
                n0[x + 1] + n0[x + 2] + n1[x + 1] + n1[x + 2] + eps,
                n1[x] + n1[x + 1] + n2[x] + n2[x + 1] + eps,
                n0[x] + n0[x + 1] + n1[x] + n1[x + 1] + eps,
            ];
            let nn = z.map(|v| k02 * v.sqrt());
            let n = nn.map(|v| k01 / v);
            let h = &hist[((y + 2) * hist_cols + x + 2) * 18..][..18];
            let at = (y + off_r) * cols + x + off_c;

            // min as SSE's minps computes it (the second operand unless the first is smaller).
            let min = |v: f32, k: usize| if v < nn[k] { v } else { nn[k] };
            let norm_clip = |v: f32| [0, 1, 2, 3].map(|k| min(v, k) * n[k]);
            let mut t = [0f32; 4];
            for o in (0..18).step_by(3) {
                let h0 = norm_clip(h[o]);
                let h1 = norm_clip(h[o + 1]);
                let h2 = norm_clip(h[o + 2]);
                data[o * plane_len + at] = sum4(h0);
                data[(o + 1) * plane_len + at] = sum4(h1);
                data[(o + 2) * plane_len + at] = sum4(h2);
                for k in 0..4 {
                    t[k] += (h0[k] + h1[k]) + h2[k];
                }
            }
            for o in 0..9 {
                data[(18 + o) * plane_len + at] = sum4(norm_clip(h[o] + h[o + 9]));
            }
            for k in 0..4 {
                data[(27 + k) * plane_len + at] = t[k] * texture_scale;
            }
        }
    }

    Fhog {
        rows,
        cols,
        data,
        first_row: off_r,
        feature_rows: hog_nr,
    }
}

/// Pixel-to-histogram geometry of one image, the same for every pixel row.
struct VoteGeometry<'a> {
    img: &'a RgbImage,
    cell_size: usize,
    /// Pixel rows `1..visible_nr` and columns `1..visible_nc` vote.
    visible_nr: usize,
    visible_nc: usize,
    /// The first `n_simd` voting pixels of a row (x = 1..=n_simd) take dlib's eight-wide path.
    n_simd: usize,
    /// Floats per histogram row: (cells_nc + 2) cells of 18 bins.
    row_len: usize,
    /// Per voting pixel (index x − 1): offset of its left cell in a histogram row, and the
    /// horizontal vote weights.
    col_cell: Vec<usize>,
    col_vx0: Vec<f32>,
    col_vx1: Vec<f32>,
}

/// Histogram rows per parallel band (each band recomputes the gradients of the one cell
/// row of pixels it shares with its neighbour).
const BAND_ROWS: usize = 16;

/// The 18-bin orientation histograms of all cells, with a one-cell border:
/// `(cells_nr + 2) × (cells_nc + 2) × 18` values. Each cell's votes are added pixel by
/// pixel in raster order, as dlib adds them, since f32 addition order changes the sums;
/// bands of histogram rows are filled in parallel, which keeps that order.
fn orientation_histograms(
    img: &RgbImage,
    cell_size: usize,
    cells_nr: usize,
    cells_nc: usize,
) -> Vec<f32> {
    let (nr, nc) = (img.height() as usize, img.width() as usize);
    let row_len = (cells_nc + 2) * 18;
    let mut hist = vec![0f32; (cells_nr + 2) * row_len];
    let visible_nr = (cells_nr * cell_size).min(nr) - 1;
    let visible_nc = (cells_nc * cell_size).min(nc) - 1;
    if visible_nc < 2 || visible_nr < 2 {
        return hist;
    }

    // dlib's eight-wide loop covers x = 1, 9, 17, … while x + 7 < visible_nc; the pixels
    // after it take the scalar path.
    let mut simd_end = 1;
    while simd_end + 7 < visible_nc {
        simd_end += 8;
    }
    let cell_d = cell_size as f64;
    let mut geom = VoteGeometry {
        img,
        cell_size,
        visible_nr,
        visible_nc,
        n_simd: simd_end - 1,
        row_len,
        col_cell: Vec::with_capacity(visible_nc),
        col_vx0: Vec::with_capacity(visible_nc),
        col_vx1: Vec::with_capacity(visible_nc),
    };
    for x in 1..visible_nc {
        let xp = ((x as f64 + 0.5) / cell_d - 0.5) as f32;
        let ixp = xp.floor();
        let vx0 = xp - ixp;
        geom.col_cell.push((ixp as i64 + 1) as usize * 18);
        geom.col_vx0.push(vx0);
        geom.col_vx1.push((1.0 - f64::from(vx0)) as f32);
    }

    if cells_nr + 2 <= 2 * BAND_ROWS {
        fill_band(&geom, 0, &mut hist);
    } else {
        hist.par_chunks_mut(BAND_ROWS * row_len)
            .enumerate()
            .for_each(|(k, band)| fill_band(&geom, k * BAND_ROWS, band));
    }
    hist
}

/// Adds the votes that fall into histogram rows `first..first + band.len() / row_len` to
/// `band`, in dlib's pixel order.
fn fill_band(geom: &VoteGeometry<'_>, first: usize, band: &mut [f32]) {
    let row_len = geom.row_len;
    let last = first + band.len() / row_len;
    let nc = geom.img.width() as usize;
    let data = geom.img.as_raw();
    let stride = nc * 3;
    let cell_d = geom.cell_size as f64;
    let width = geom.visible_nc - 1;
    let n_simd = geom.n_simd;
    let dirs: [(f32, f32); 9] = DIRS.map(|(a, b)| (a as f32, b as f32));

    // Pixel row y votes into histogram rows hr0 and hr0 + 1 (hr0 = ⌊(y + 0.5)/cell − 0.5⌋ + 1,
    // non-decreasing in y). Start a cell early and skip rows that vote above the band.
    let y_start = (first.saturating_sub(2) * geom.cell_size).max(1);
    if y_start >= geom.visible_nr {
        return;
    }

    // Planar copies of the three image rows around the current one (i32, for the
    // differences), rotated as y advances.
    let planar = |row: usize, out: &mut [Vec<i32>; 3]| {
        let src = &data[row * stride..(row + 1) * stride];
        let [r, g, b] = out;
        let dst = r.iter_mut().zip(g.iter_mut().zip(b.iter_mut()));
        for (px, (r, (g, b))) in src.chunks_exact(3).zip(dst) {
            *r = i32::from(px[0]);
            *g = i32::from(px[1]);
            *b = i32::from(px[2]);
        }
    };
    let mut rows: [[Vec<i32>; 3]; 3] =
        std::array::from_fn(|_| std::array::from_fn(|_| vec![0i32; nc]));
    let mut loaded = y_start - 1;
    planar(y_start - 1, &mut rows[(y_start - 1) % 3]);
    planar(y_start, &mut rows[y_start % 3]);

    let mut gx = vec![0f32; width];
    let mut gy = vec![0f32; width];
    let mut mag = vec![0f32; width];
    let mut best_o = vec![0u32; width];

    for y in y_start..geom.visible_nr {
        let yp = ((y as f64 + 0.5) / cell_d - 0.5) as f32;
        let iyp = yp.floor();
        let hr0 = (iyp as i64 + 1) as usize;
        if hr0 + 1 < first {
            continue;
        }
        if hr0 >= last {
            break;
        }
        let vy0 = yp - iyp;
        let vy1 = (1.0 - f64::from(vy0)) as f32;

        // Bring rows y - 1, y, y + 1 into the ring (rows skipped above are loaded here).
        while loaded < y + 1 {
            loaded += 1;
            planar(loaded, &mut rows[loaded % 3]);
        }
        let [prev, cur, next] = [&rows[(y - 1) % 3], &rows[y % 3], &rows[(y + 1) % 3]];
        gradients(prev, cur, next, n_simd, &mut gx, &mut gy, &mut mag);
        orientations(&gx, &gy, &dirs, &mut best_o);

        // The two histogram rows this pixel row votes into, when they are in the band.
        let (top, bottom): (Option<&mut [f32]>, Option<&mut [f32]>) = if hr0 < first {
            (None, Some(&mut band[..row_len]))
        } else if hr0 + 1 >= last {
            (
                Some(&mut band[(hr0 - first) * row_len..(hr0 - first + 1) * row_len]),
                None,
            )
        } else {
            let (t, b) =
                band[(hr0 - first) * row_len..(hr0 - first + 2) * row_len].split_at_mut(row_len);
            (Some(t), Some(b))
        };

        // Bilinear votes into the 4 surrounding cells, pixel by pixel, in order.
        let weights = |i: usize, v: f32, vx0: f32, vx1: f32| {
            if i < n_simd {
                let a = vx1 * v;
                let b = vx0 * v;
                (vy1 * a, vy0 * a, vy1 * b, vy0 * b)
            } else {
                (
                    (vy1 * vx1) * v,
                    (vy0 * vx1) * v,
                    (vy1 * vx0) * v,
                    (vy0 * vx0) * v,
                )
            }
        };
        let px = mag.iter().zip(&best_o).zip(
            geom.col_cell
                .iter()
                .zip(geom.col_vx0.iter().zip(&geom.col_vx1)),
        );
        match (top, bottom) {
            (Some(top), Some(bottom)) => {
                for (i, ((&v, &o), (&cell, (&vx0, &vx1)))) in px.enumerate() {
                    let (v11, v01, v10, v00) = weights(i, v, vx0, vx1);
                    let at = cell + o as usize;
                    top[at] += v11;
                    bottom[at] += v01;
                    top[at + 18] += v10;
                    bottom[at + 18] += v00;
                }
            }
            (Some(top), None) => {
                for (i, ((&v, &o), (&cell, (&vx0, &vx1)))) in px.enumerate() {
                    let (v11, _, v10, _) = weights(i, v, vx0, vx1);
                    let at = cell + o as usize;
                    top[at] += v11;
                    top[at + 18] += v10;
                }
            }
            (None, Some(bottom)) => {
                for (i, ((&v, &o), (&cell, (&vx0, &vx1)))) in px.enumerate() {
                    let (_, v01, _, v00) = weights(i, v, vx0, vx1);
                    let at = cell + o as usize;
                    bottom[at] += v01;
                    bottom[at + 18] += v00;
                }
            }
            (None, None) => {}
        }
    }
}

/// Gradient of pixels x = 1..=gx.len() of the current row (stored at x − 1): per channel
/// central differences, keeping the channel of largest energy, with dlib's tie-breaks (the
/// first `n_simd` pixels prefer the later channel, the rest the earlier one). Writes the
/// chosen dx, dy and the magnitude √(dx² + dy²), all f32.
fn gradients(
    prev: &[Vec<i32>; 3],
    cur: &[Vec<i32>; 3],
    next: &[Vec<i32>; 3],
    n_simd: usize,
    gx: &mut [f32],
    gy: &mut [f32],
    mag: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { gradients_avx2(prev, cur, next, n_simd, gx, gy, mag) };
            return;
        }
    }
    gradients_impl(prev, cur, next, n_simd, gx, gy, mag);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gradients_avx2(
    prev: &[Vec<i32>; 3],
    cur: &[Vec<i32>; 3],
    next: &[Vec<i32>; 3],
    n_simd: usize,
    gx: &mut [f32],
    gy: &mut [f32],
    mag: &mut [f32],
) {
    gradients_impl(prev, cur, next, n_simd, gx, gy, mag)
}

#[inline(always)]
fn gradients_impl(
    prev: &[Vec<i32>; 3],
    cur: &[Vec<i32>; 3],
    next: &[Vec<i32>; 3],
    n_simd: usize,
    gx: &mut [f32],
    gy: &mut [f32],
    mag: &mut [f32],
) {
    let w = gx.len();
    let s = n_simd.min(w);
    let (gx0, gx1) = gx.split_at_mut(s);
    let (gy0, gy1) = gy.split_at_mut(s);
    let (m0, m1) = mag.split_at_mut(s);
    gradient_run::<true>(prev, cur, next, 0, gx0, gy0, m0);
    gradient_run::<false>(prev, cur, next, s, gx1, gy1, m1);
}

/// One channel's (dx, dy, dx² + dy²) at index `i` (pixel x = i + 1).
#[inline(always)]
fn channel_gradient(prev: &[i32], cur: &[i32], next: &[i32], i: usize) -> (i32, i32, i32) {
    let dx = cur[i + 2] - cur[i];
    let dy = next[i + 1] - prev[i + 1];
    (dx, dy, dx * dx + dy * dy)
}

/// Gradients of pixels at indices `start..start + gx.len()`; `LATER_WINS` selects the
/// eight-wide path's tie-break.
#[inline(always)]
fn gradient_run<const LATER_WINS: bool>(
    prev: &[Vec<i32>; 3],
    cur: &[Vec<i32>; 3],
    next: &[Vec<i32>; 3],
    start: usize,
    gx: &mut [f32],
    gy: &mut [f32],
    mag: &mut [f32],
) {
    let n = gx.len();
    // Bounds fixed up front so the loop body is check-free and vectorises.
    let (pr, pg, pb) = (
        &prev[0][start..start + n + 2],
        &prev[1][start..start + n + 2],
        &prev[2][start..start + n + 2],
    );
    let (cr, cg, cb) = (
        &cur[0][start..start + n + 2],
        &cur[1][start..start + n + 2],
        &cur[2][start..start + n + 2],
    );
    let (nr, ng, nb) = (
        &next[0][start..start + n + 2],
        &next[1][start..start + n + 2],
        &next[2][start..start + n + 2],
    );
    let (gy, mag) = (&mut gy[..n], &mut mag[..n]);
    for i in 0..n {
        let r = channel_gradient(pr, cr, nr, i);
        let g = channel_gradient(pg, cg, ng, i);
        let b = channel_gradient(pb, cb, nb, i);
        let (dx, dy, len) = if LATER_WINS {
            let t = if r.2 > g.2 { r } else { g };
            if t.2 > b.2 {
                t
            } else {
                b
            }
        } else {
            let t = if g.2 > r.2 { g } else { r };
            if b.2 > t.2 {
                b
            } else {
                t
            }
        };
        gx[i] = dx as f32;
        gy[i] = dy as f32;
        mag[i] = (len as f32).sqrt();
    }
}

/// The best of the 18 signed orientation bins for each gradient: the direction with the
/// largest dot product, its opposite (bin + 9) when the negated product is larger; ties
/// keep the earlier bin.
fn orientations(gx: &[f32], gy: &[f32], dirs: &[(f32, f32); 9], best_o: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { orientations_avx2(gx, gy, dirs, best_o) };
            return;
        }
    }
    orientations_impl(gx, gy, dirs, best_o);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn orientations_avx2(gx: &[f32], gy: &[f32], dirs: &[(f32, f32); 9], best_o: &mut [u32]) {
    orientations_impl(gx, gy, dirs, best_o)
}

#[inline(always)]
fn orientations_impl(gx: &[f32], gy: &[f32], dirs: &[(f32, f32); 9], best_o: &mut [u32]) {
    for ((&x, &y), out) in gx.iter().zip(gy).zip(best_o.iter_mut()) {
        let mut best = 0f32;
        let mut o_best = 0u32;
        for (o, &(dx, dy)) in dirs.iter().enumerate() {
            let dot = x * dx + y * dy;
            let better = dot > best;
            best = if better { dot } else { best };
            o_best = if better { o as u32 } else { o_best };
            let neg = -dot;
            let better = neg > best;
            best = if better { neg } else { best };
            o_best = if better { o as u32 + 9 } else { o_best };
        }
        *out = o_best;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_have_no_features() {
        assert!(extract(&RgbImage::new(16, 16), 8, 10, 10).is_empty());
        assert!(extract(&RgbImage::new(0, 0), 8, 10, 10).is_empty());
    }

    #[test]
    fn flat_image_has_zero_features_and_padding() {
        let f = extract(&RgbImage::from_pixel(80, 64, [9, 9, 9].into()), 8, 10, 10);
        assert_eq!((f.rows, f.cols), (6 + 9, 8 + 9));
        assert_eq!((f.first_row, f.feature_rows), (4, 6));
        assert!(f.data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn vertical_edge_votes_into_horizontal_gradient_bins() {
        let img = RgbImage::from_fn(64, 64, |x, _| {
            if x < 32 {
                [0, 0, 0].into()
            } else {
                [200, 100, 50].into()
            }
        });
        let f = extract(&img, 8, 10, 10);
        // Cells next to the edge: bin 0 (gradient along +x) dominates, bin 9 is empty.
        let at = (f.first_row + 2) * f.cols + 4 + 2;
        assert!(f.plane(0)[at] > 0.1, "{}", f.plane(0)[at]);
        assert_eq!(f.plane(9)[at], 0.0);
        assert!(f.plane(18)[at] > 0.1);
    }
}
