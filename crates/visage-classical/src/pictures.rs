//! Pictures of what the methods learn: mean face, eigenfaces, Fisherfaces and
//! reconstructions, as gray PNG grids.

use std::path::Path;

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{GrayImage, Luma};
use nalgebra::DMatrix;

use crate::lda::Lda;
use crate::pca::Pca;
use crate::ClassicalError;

/// Gap between tiles of a grid, in pixels.
pub const GAP: u32 = 2;

/// A vector of `width * height` values (row-major) as an image, stretched so its minimum is
/// black and its maximum white (eigenfaces have no natural intensity scale).
pub fn stretched(values: &[f64], width: u32, height: u32) -> GrayImage {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    GrayImage::from_fn(width, height, |x, y| {
        let v = values[(y * width + x) as usize];
        Luma([((v - lo) / span * 255.0).round() as u8])
    })
}

/// A vector of intensities in [0, 1] as an image, clamped (reconstructions overshoot a little).
pub fn intensities(values: &[f64], width: u32, height: u32) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| {
        let v = values[(y * width + x) as usize].clamp(0.0, 1.0);
        Luma([(v * 255.0).round() as u8])
    })
}

/// Tiles of one size laid out `columns` to a row on a white background.
pub fn grid(tiles: &[GrayImage], columns: u32) -> GrayImage {
    let Some(first) = tiles.first() else {
        return GrayImage::new(0, 0);
    };
    let (w, h) = first.dimensions();
    let columns = columns.clamp(1, tiles.len() as u32);
    let rows = (tiles.len() as u32).div_ceil(columns);
    let mut out = GrayImage::from_pixel(
        columns * (w + GAP) + GAP,
        rows * (h + GAP) + GAP,
        Luma([255]),
    );
    for (i, tile) in tiles.iter().enumerate() {
        let (c, r) = (i as u32 % columns, i as u32 / columns);
        image::imageops::replace(
            &mut out,
            tile,
            i64::from(GAP + c * (w + GAP)),
            i64::from(GAP + r * (h + GAP)),
        );
    }
    out
}

/// The mean face followed by the first `count` eigenfaces, `columns` to a row.
pub fn eigenfaces(pca: &Pca, width: u32, height: u32, count: usize, columns: u32) -> GrayImage {
    let p = &pca.projection;
    let mut tiles = vec![intensities(p.mean.as_slice(), width, height)];
    for k in 0..count.min(p.components()) {
        tiles.push(stretched(p.basis.column(k).as_slice(), width, height));
    }
    grid(&tiles, columns)
}

/// The first `count` Fisherfaces (the LDA directions in pixel space), `columns` to a row.
pub fn fisherfaces(lda: &Lda, width: u32, height: u32, count: usize, columns: u32) -> GrayImage {
    let tiles: Vec<GrayImage> = (0..count.min(lda.components()))
        .map(|k| stretched(lda.projection.basis.column(k).as_slice(), width, height))
        .collect();
    grid(&tiles, columns)
}

/// One row per face (`width * height` intensities each): the face, then its reconstructions
/// from the first `ks[i]` principal components.
pub fn reconstructions(
    pca: &Pca,
    faces: &[Vec<f64>],
    width: u32,
    height: u32,
    ks: &[usize],
) -> GrayImage {
    let mut tiles = Vec::new();
    for face in faces {
        let x = DMatrix::from_column_slice(face.len(), 1, face);
        tiles.push(intensities(face, width, height));
        for &k in ks {
            tiles.push(intensities(
                pca.reconstruct_with(&x, k).as_slice(),
                width,
                height,
            ));
        }
    }
    grid(&tiles, ks.len() as u32 + 1)
}

/// Writes `image` as PNG, compressed hard: these pictures are meant to be committed.
pub fn save_png(image: &GrayImage, path: &Path) -> Result<(), ClassicalError> {
    let err = |message: String| ClassicalError::WritePicture {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let encoder = PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Best,
        PngFilter::Adaptive,
    );
    image
        .write_with_encoder(encoder)
        .map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_size_and_stretch() {
        let a = stretched(&[0.0, 1.0, 2.0, 3.0], 2, 2);
        assert_eq!(a.get_pixel(0, 0).0[0], 0);
        assert_eq!(a.get_pixel(1, 1).0[0], 255);
        let g = grid(&[a.clone(), a.clone(), a], 2);
        assert_eq!(g.dimensions(), (2 * (2 + GAP) + GAP, 2 * (2 + GAP) + GAP));
    }
}
