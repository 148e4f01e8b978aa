//! Scoring a pyramid level: each sub-detector's filters correlated with the FHOG planes and
//! summed into a saliency image, then thresholded.
//!
//! dlib approximates each plane's filter by its leading separable (rank-one) parts from an
//! SVD and, when that is cheaper, filters with those; otherwise it uses the full filters.
//! Both are reproduced with dlib's f32 operation order. dlib computes eight output columns
//! at a time with three interleaved accumulators (its SIMD path) and the last few columns
//! of each row with one accumulator; the sums differ in the last bits, so the same split is
//! used here. Within those rules the work is reorganised freely (loops vectorised across
//! columns, zero rows skipped): adding an exact zero never changes an f32 sum.

use visage_formats::dlib::hog_detector::HogSubDetector;

use super::fhog::{Fhog, PLANES};
use super::svd::svd;

/// One rank-one part of a plane's filter: `col ⊗ row`.
#[derive(Debug, Clone)]
pub(crate) struct Separable {
    /// The FHOG plane it applies to.
    pub plane: usize,
    /// Weights along a row (one per filter column), `v·√σ` rounded to f32.
    pub row: Vec<f32>,
    /// Weights along a column (one per filter row), `u·√σ` rounded to f32.
    pub col: Vec<f32>,
}

/// How a sub-detector filters.
#[derive(Debug, Clone)]
pub(crate) enum Bank {
    /// Rank-one parts, plane by plane, each plane's parts by decreasing singular value.
    Separable(Vec<Separable>),
    /// Full `rows × cols` filters (row-major, f32), one per plane.
    Full(Vec<Vec<f32>>),
}

/// A sub-detector ready to run.
#[derive(Debug, Clone)]
pub(crate) struct SubDetector {
    /// Its filters, prepared for scanning.
    pub bank: Bank,
    /// Detection threshold `b`.
    pub threshold: f64,
}

impl SubDetector {
    /// Builds the filter bank as dlib's `build_fhog_filterbank` does: per plane, an SVD in
    /// f64; singular values below `max(1e-4, 0.001·σ_max)` dropped; the rest kept as
    /// `u·√σ`, `v·√σ`. The separable form is used unless it has more parts than
    /// `planes · min(rows, cols) / 3`.
    pub(crate) fn new(det: &HogSubDetector, rows: usize, cols: usize) -> Self {
        let mut parts = Vec::new();
        for (plane, f) in det.filters.iter().enumerate() {
            let s = svd(f, rows, cols);
            let max = s.sigma.iter().copied().fold(0.0f64, f64::max);
            let thresh = f64::max(1e-4, max * 0.001);
            for j in 0..s.sigma.len() {
                let sigma = s.sigma[j];
                if sigma.abs() < thresh {
                    continue;
                }
                let k = sigma.sqrt();
                parts.push(Separable {
                    plane,
                    row: s.v[j].iter().map(|x| (x * k) as f32).collect(),
                    col: s.u[j].iter().map(|x| (x * k) as f32).collect(),
                });
            }
        }
        let limit = (det.filters.len() * rows.min(cols)) as f64 / 3.0;
        let bank = if parts.len() as f64 > limit {
            Bank::Full(
                det.filters
                    .iter()
                    .map(|f| f.iter().map(|&w| w as f32).collect())
                    .collect(),
            )
        } else {
            Bank::Separable(parts)
        };
        Self {
            bank,
            threshold: det.threshold,
        }
    }

    /// Number of separable parts (0 when full filters are used).
    #[cfg(test)]
    pub(crate) fn separable_parts(&self) -> usize {
        match &self.bank {
            Bank::Separable(p) => p.len(),
            Bank::Full(_) => 0,
        }
    }
}

/// A window whose saliency reached the threshold, in FHOG plane coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    /// Row of the window centre in the plane.
    pub row: usize,
    /// Column of the window centre in the plane.
    pub col: usize,
    /// The filter response, f32 as dlib keeps it.
    pub saliency: f32,
}

/// Where the filters are fully inside a plane: rows `first_row..last_row`, columns
/// `first_col..last_col`, and the end of the columns done eight at a time.
#[derive(Debug, Clone, Copy)]
struct Area {
    first_row: usize,
    last_row: usize,
    first_col: usize,
    last_col: usize,
    simd_end: usize,
}

impl Area {
    fn new(rows: usize, cols: usize, k_rows: usize, k_cols: usize) -> Option<Self> {
        let first_row = k_rows / 2;
        let first_col = k_cols / 2;
        let last_row = rows.checked_sub((k_rows - 1) / 2)?;
        let last_col = cols.checked_sub((k_cols - 1) / 2)?;
        if last_row <= first_row || last_col <= first_col {
            return None;
        }
        let mut simd_end = first_col;
        while simd_end + 7 < last_col {
            simd_end += 8;
        }
        Some(Self {
            first_row,
            last_row,
            first_col,
            last_col,
            simd_end,
        })
    }
}

/// Runs one sub-detector over one level's planes; returns every window whose saliency, as
/// f64, is at least `thresh`, in raster order.
pub(crate) fn scan(
    fhog: &Fhog,
    det: &SubDetector,
    k_rows: usize,
    k_cols: usize,
    thresh: f64,
) -> Vec<Hit> {
    if fhog.is_empty() || k_rows == 0 || k_cols == 0 {
        return Vec::new();
    }
    let Some(area) = Area::new(fhog.rows, fhog.cols, k_rows, k_cols) else {
        return Vec::new();
    };
    let (rows, cols) = (fhog.rows, fhog.cols);
    let mut saliency = vec![0f32; rows * cols];
    match &det.bank {
        Bank::Separable(parts) => {
            if parts.is_empty() {
                return Vec::new();
            }
            let mut scratch = vec![0f32; rows * cols];
            for part in parts {
                if part.plane >= PLANES {
                    continue;
                }
                separable_part(fhog, part, &area, &mut scratch, &mut saliency);
            }
        }
        Bank::Full(filters) => {
            for (plane, f) in filters.iter().enumerate().take(PLANES) {
                full_filter(
                    fhog.plane(plane),
                    cols,
                    f,
                    k_rows,
                    k_cols,
                    &area,
                    &mut saliency,
                );
            }
        }
    }

    let mut hits = Vec::new();
    for r in area.first_row..area.last_row {
        let row = &saliency[r * cols..(r + 1) * cols];
        for (c, &v) in row
            .iter()
            .enumerate()
            .take(area.last_col)
            .skip(area.first_col)
        {
            if f64::from(v) >= thresh {
                hits.push(Hit {
                    row: r,
                    col: c,
                    saliency: v,
                });
            }
        }
    }
    hits
}

/// Adds one rank-one part's response to `saliency`: a row pass into `scratch`, then a
/// column pass. `scratch` must be zero outside the feature rows.
fn separable_part(
    fhog: &Fhog,
    part: &Separable,
    area: &Area,
    scratch: &mut [f32],
    saliency: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { kernels::separable_part_avx2(fhog, part, area, scratch, saliency) };
            return;
        }
    }
    kernels::separable_part_generic(fhog, part, area, scratch, saliency);
}

/// Adds a full (non-separable) filter's response to `saliency`.
fn full_filter(
    plane: &[f32],
    cols: usize,
    f: &[f32],
    k_rows: usize,
    k_cols: usize,
    area: &Area,
    saliency: &mut [f32],
) {
    for r in area.first_row..area.last_row {
        let top = r - area.first_row;
        for c in area.first_col..area.last_col {
            let left = c - area.first_col;
            let px = |m: usize, n: usize| plane[(top + m) * cols + left + n];
            let v = if c < area.simd_end {
                let (mut t1, mut t2, mut t3) = (0f32, 0f32, 0f32);
                for m in 0..k_rows {
                    let mut n = 0;
                    while n + 2 < k_cols {
                        t1 += px(m, n) * f[m * k_cols + n];
                        t2 += px(m, n + 1) * f[m * k_cols + n + 1];
                        t3 += px(m, n + 2) * f[m * k_cols + n + 2];
                        n += 3;
                    }
                    while n < k_cols {
                        t1 += px(m, n) * f[m * k_cols + n];
                        n += 1;
                    }
                }
                t1 + (t2 + t3)
            } else {
                let mut t = 0f32;
                for m in 0..k_rows {
                    for n in 0..k_cols {
                        t += px(m, n) * f[m * k_cols + n];
                    }
                }
                t
            };
            saliency[r * cols + c] += v;
        }
    }
}

/// The two separable passes, compiled twice: for AVX2 when the CPU has it (chosen at run
/// time, once per part), and for the baseline target. Neither uses fused multiply-add,
/// which would change the rounding.
mod kernels {
    use super::{Area, Fhog, Separable};

    /// [`super::separable_part`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) fn separable_part_avx2(
        fhog: &Fhog,
        part: &Separable,
        area: &Area,
        scratch: &mut [f32],
        saliency: &mut [f32],
    ) {
        separable_part_body(fhog, part, area, scratch, saliency)
    }

    /// [`super::separable_part`] for the baseline target.
    pub(super) fn separable_part_generic(
        fhog: &Fhog,
        part: &Separable,
        area: &Area,
        scratch: &mut [f32],
        saliency: &mut [f32],
    ) {
        separable_part_body(fhog, part, area, scratch, saliency)
    }

    #[inline(always)]
    fn separable_part_body(
        fhog: &Fhog,
        part: &Separable,
        area: &Area,
        scratch: &mut [f32],
        saliency: &mut [f32],
    ) {
        let cols = fhog.cols;
        let plane = fhog.plane(part.plane);
        // Rows outside the features are zero, so their row pass is zero: they are never
        // written, and stay zero in `scratch`.
        for r in fhog.first_row..fhog.first_row + fhog.feature_rows {
            let inp = &plane[r * cols..(r + 1) * cols];
            let out = &mut scratch[r * cols..(r + 1) * cols];
            row_pass_dispatch(
                inp,
                out,
                &part.row,
                area.first_col,
                area.simd_end,
                area.last_col,
            );
        }
        for r in area.first_row..area.last_row {
            // Filter taps m read scratch row r − first_row + m.
            let top = r - area.first_row;
            let out = &mut saliency[r * cols..(r + 1) * cols];
            col_pass_dispatch(scratch, cols, top, &part.col, area, out);
        }
    }

    /// Specialises the common filter length (10 taps) so the tap loops unroll.
    #[inline(always)]
    fn row_pass_dispatch(
        inp: &[f32],
        out: &mut [f32],
        f: &[f32],
        first_col: usize,
        simd_end: usize,
        last_col: usize,
    ) {
        if f.len() == 10 {
            row_pass_impl::<10>(inp, out, f, first_col, simd_end, last_col)
        } else {
            row_pass_any(inp, out, f, first_col, simd_end, last_col)
        }
    }

    #[inline(always)]
    fn col_pass_dispatch(
        scratch: &[f32],
        cols: usize,
        top: usize,
        g: &[f32],
        area: &Area,
        out: &mut [f32],
    ) {
        if g.len() == 10 {
            col_pass_impl::<10>(scratch, cols, top, g, area, out)
        } else {
            col_pass_any(scratch, cols, top, g, area, out)
        }
    }

    /// Eight-wide order for `K` taps: three accumulators take taps 0,3,6,… / 1,4,7,… /
    /// 2,5,8,… while a full group of three remains; leftover taps go to the first; the
    /// result is `a1 + (a2 + a3)`.
    #[inline(always)]
    fn grouped<const K: usize>(x: impl Fn(usize) -> f32, f: &[f32; K]) -> f32 {
        let mut a1 = 0f32;
        let mut a2 = 0f32;
        let mut a3 = 0f32;
        let mut n = 0;
        while n + 2 < K {
            a1 += x(n) * f[n];
            a2 += x(n + 1) * f[n + 1];
            a3 += x(n + 2) * f[n + 2];
            n += 3;
        }
        while n < K {
            a1 += x(n) * f[n];
            n += 1;
        }
        a1 + (a2 + a3)
    }

    #[inline(always)]
    fn row_pass_impl<const K: usize>(
        inp: &[f32],
        out: &mut [f32],
        f: &[f32],
        first_col: usize,
        simd_end: usize,
        last_col: usize,
    ) {
        let Ok(f) = <&[f32; K]>::try_from(f) else {
            return;
        };
        // Output column c reads inp[c - first_col ..][..K].
        let simd_out = &mut out[first_col..simd_end];
        let src = &inp[..simd_end - first_col + K - 1];
        for (j, o) in simd_out.iter_mut().enumerate() {
            let w: &[f32; K] = match src[j..j + K].try_into() {
                Ok(w) => w,
                Err(_) => return,
            };
            *o = grouped::<K>(|n| w[n], f);
        }
        for c in simd_end..last_col {
            let w = &inp[c - first_col..c - first_col + K];
            let mut t = 0f32;
            for n in 0..K {
                t += w[n] * f[n];
            }
            out[c] = t;
        }
    }

    #[inline(always)]
    fn row_pass_any(
        inp: &[f32],
        out: &mut [f32],
        f: &[f32],
        first_col: usize,
        simd_end: usize,
        last_col: usize,
    ) {
        let k = f.len();
        for c in first_col..last_col {
            let w = &inp[c - first_col..c - first_col + k];
            out[c] = if c < simd_end {
                let (mut a1, mut a2, mut a3) = (0f32, 0f32, 0f32);
                let mut n = 0;
                while n + 2 < k {
                    a1 += w[n] * f[n];
                    a2 += w[n + 1] * f[n + 1];
                    a3 += w[n + 2] * f[n + 2];
                    n += 3;
                }
                while n < k {
                    a1 += w[n] * f[n];
                    n += 1;
                }
                a1 + (a2 + a3)
            } else {
                let mut t = 0f32;
                for n in 0..k {
                    t += w[n] * f[n];
                }
                t
            };
        }
    }

    #[inline(always)]
    fn col_pass_impl<const K: usize>(
        scratch: &[f32],
        cols: usize,
        top: usize,
        g: &[f32],
        area: &Area,
        out: &mut [f32],
    ) {
        let Ok(g) = <&[f32; K]>::try_from(g) else {
            return;
        };
        let rows: [&[f32]; K] =
            std::array::from_fn(|m| &scratch[(top + m) * cols..(top + m + 1) * cols]);
        let (a, b) = (area.first_col, area.simd_end);
        let rows_simd: [&[f32]; K] = rows.map(|r| &r[a..b]);
        for (j, o) in out[a..b].iter_mut().enumerate() {
            // dlib computes `v + out`; f32 addition is commutative, bit for bit.
            *o += grouped::<K>(|m| rows_simd[m][j], g);
        }
        for c in area.simd_end..area.last_col {
            let mut t = 0f32;
            for m in 0..K {
                t += rows[m][c] * g[m];
            }
            out[c] += t;
        }
    }

    #[inline(always)]
    fn col_pass_any(
        scratch: &[f32],
        cols: usize,
        top: usize,
        g: &[f32],
        area: &Area,
        out: &mut [f32],
    ) {
        let k = g.len();
        let x = |m: usize, c: usize| -> f32 { scratch[(top + m) * cols + c] };
        let span = out
            .iter_mut()
            .enumerate()
            .take(area.last_col)
            .skip(area.first_col);
        for (c, o) in span {
            let v = if c < area.simd_end {
                let (mut a1, mut a2, mut a3) = (0f32, 0f32, 0f32);
                let mut m = 0;
                while m + 2 < k {
                    a1 += x(m, c) * g[m];
                    a2 += x(m + 1, c) * g[m + 1];
                    a3 += x(m + 2, c) * g[m + 2];
                    m += 3;
                }
                while m < k {
                    a1 += x(m, c) * g[m];
                    m += 1;
                }
                a1 + (a2 + a3)
            } else {
                let mut t = 0f32;
                for (m, &gm) in g.iter().enumerate() {
                    t += x(m, c) * gm;
                }
                t
            };
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 2-D correlation with a rank-reduced filter, in f64, for comparison.
    fn reference(fhog: &Fhog, det: &SubDetector, k: usize) -> Vec<f64> {
        let Bank::Separable(parts) = &det.bank else {
            panic!()
        };
        let (rows, cols) = (fhog.rows, fhog.cols);
        let mut out = vec![0f64; rows * cols];
        for r in k / 2..rows - (k - 1) / 2 {
            for c in k / 2..cols - (k - 1) / 2 {
                let mut s = 0f64;
                for p in parts {
                    let plane = fhog.plane(p.plane);
                    for m in 0..k {
                        for n in 0..k {
                            s += f64::from(plane[(r - k / 2 + m) * cols + c - k / 2 + n])
                                * f64::from(p.col[m])
                                * f64::from(p.row[n]);
                        }
                    }
                }
                out[r * cols + c] = s;
            }
        }
        out
    }

    #[test]
    fn separable_scan_matches_direct_correlation() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f64 / (1u64 << 24) as f64) - 0.5
        };
        let det = HogSubDetector {
            filters: (0..PLANES)
                .map(|_| (0..100).map(|_| rnd()).collect())
                .collect(),
            threshold: 0.0,
        };
        let sub = SubDetector::new(&det, 10, 10);
        // Random filters are full rank: the separable form would be too costly.
        assert_eq!(sub.separable_parts(), 0);

        // A rank-2 filter per plane keeps the separable form.
        let low = HogSubDetector {
            filters: (0..PLANES)
                .map(|_| {
                    let (a, b, c, d): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) = (
                        (0..10).map(|_| rnd()).collect(),
                        (0..10).map(|_| rnd()).collect(),
                        (0..10).map(|_| rnd()).collect(),
                        (0..10).map(|_| rnd()).collect(),
                    );
                    (0..100)
                        .map(|i| a[i / 10] * b[i % 10] + 0.5 * c[i / 10] * d[i % 10])
                        .collect()
                })
                .collect(),
            threshold: 0.0,
        };
        let sub = SubDetector::new(&low, 10, 10);
        assert_eq!(sub.separable_parts(), 2 * PLANES);

        let (rows, cols) = (25, 40);
        let mut fhog = Fhog {
            rows,
            cols,
            data: vec![0.0; PLANES * rows * cols],
            first_row: 4,
            feature_rows: rows - 9,
        };
        for p in 0..PLANES {
            for r in 4..rows - 5 {
                for c in 4..cols - 5 {
                    fhog.data[(p * rows + r) * cols + c] = (rnd() + 0.5) as f32 * 0.2;
                }
            }
        }
        let want = reference(&fhog, &sub, 10);
        let hits = scan(&fhog, &sub, 10, 10, f64::NEG_INFINITY);
        assert_eq!(hits.len(), (rows - 9) * (cols - 9));
        for h in hits {
            let w = want[h.row * cols + h.col];
            assert!(
                (f64::from(h.saliency) - w).abs() < 1e-4,
                "{} vs {w}",
                h.saliency
            );
        }
    }
}
