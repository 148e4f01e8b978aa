//! Omniglot on disk (`<set>/<alphabet>/<character>/*.png`, 105x105, black ink on white), loaded
//! as small grey images with ink = 1 and background = 0, one [`Class`] per character.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::augment::bilinear;

use crate::TrainError;

/// One class: its images, each `side x side` values in `[0, 1]`, row-major.
#[derive(Debug, Clone)]
pub struct Class {
    /// A readable name, `alphabet/character` (with `@90`, `@mirror` etc. for
    /// rotated and mirrored copies).
    pub name: String,
    /// The images.
    pub images: Vec<Vec<f32>>,
}

/// A labelled set of small square grey images.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Image side, pixels.
    pub side: usize,
    /// How each drawing was placed in the frame when it was loaded (a run refuses data framed
    /// otherwise than its settings say, as the evaluation will frame images by the settings).
    pub framing: Framing,
    /// The classes.
    pub classes: Vec<Class>,
}

impl Dataset {
    /// Number of images over all classes.
    pub fn image_count(&self) -> usize {
        self.classes.iter().map(|c| c.images.len()).sum()
    }

    /// Adds every class rotated by 90, 180 and 270 degrees as a new class (a rotated character
    /// is a different character, so rotations multiply the classes by four).
    pub fn with_rotated_classes(self) -> Self {
        self.with_transformed_classes(&[1, 2, 3], |quarter| format!("@{}", quarter * 90))
    }

    /// Adds every class mirrored left-right as a new class (a mirrored character is another
    /// character); after [`Dataset::with_rotated_classes`] the rotated copies are mirrored
    /// too, giving all eight symmetries of the square.
    pub fn with_mirrored_classes(self) -> Self {
        self.with_transformed_classes(&[4], |_| "@mirror".to_string())
    }

    /// Adds, for each [`symmetry`] in `symmetries`, a copy of every class so transformed, its
    /// name suffixed by `suffix(symmetry)`.
    fn with_transformed_classes(
        mut self,
        symmetries: &[usize],
        suffix: fn(usize) -> String,
    ) -> Self {
        let side = self.side;
        let originals = self.classes.clone();
        for &k in symmetries {
            for class in &originals {
                self.classes.push(Class {
                    name: format!("{}{}", class.name, suffix(k)),
                    images: class
                        .images
                        .iter()
                        .map(|img| symmetry(img, side, k))
                        .collect(),
                });
            }
        }
        self
    }
}

/// The eight symmetries of the square applied to `image` (`side x side`, row-major):
/// `k % 4` quarter turns counter-clockwise, then for `k >= 4` a left-right mirror.
pub fn symmetry(image: &[f32], side: usize, k: usize) -> Vec<f32> {
    let turned = rotate_quarters(image, side, k % 4);
    if k < 4 {
        return turned;
    }
    let mut out = vec![0.0; side * side];
    for (row_out, row_in) in out.chunks_mut(side).zip(turned.chunks(side)) {
        for (o, i) in row_out.iter_mut().zip(row_in.iter().rev()) {
            *o = *i;
        }
    }
    out
}

/// `image` (`side x side`, row-major) rotated counter-clockwise by `quarters` x 90 degrees.
pub fn rotate_quarters(image: &[f32], side: usize, quarters: usize) -> Vec<f32> {
    let mut out = vec![0.0; side * side];
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = match quarters % 4 {
                0 => (x, y),
                1 => (side - 1 - y, x),
                2 => (side - 1 - x, side - 1 - y),
                _ => (y, side - 1 - x),
            };
            out[y * side + x] = image[sy * side + sx];
        }
    }
    out
}

/// How a drawing is placed in the frame before it is shrunk to the network's side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Framing {
    /// Where the drawer put it, at the size they drew it.
    #[default]
    AsDrawn,
    /// Moment normalisation, as in classic handwriting recognition: the ink's centroid is moved
    /// to the centre of the frame and the drawing scaled so that the ink's radius of gyration
    /// (root mean squared distance of ink from the centroid) is `radius` times the side. Two
    /// drawers' copies of a character then differ in shape only, not in where they sit or how
    /// large they are. A blank image is left as it is.
    Centred {
        /// Target radius of gyration, as a fraction of the side (Omniglot's median as drawn:
        /// 0.23).
        radius: f64,
    },
}

impl Framing {
    /// Moment normalisation at the radius that suits Omniglot at 28x28: 0.31 of the side,
    /// characters a third larger than their median as drawn (0.23), so that strokes keep more
    /// of the 28 pixels (a model trained at 0.28 and evaluated at 0.25, 0.28, 0.31 and 0.34 on
    /// one-shot runs scored best at 0.31).
    pub const OMNIGLOT: Self = Framing::Centred { radius: 0.31 };

    /// Checks the radius.
    pub fn validate(&self) -> Result<(), TrainError> {
        match *self {
            Framing::Centred { radius } if !(radius > 0.0 && radius <= 0.5) => {
                Err(TrainError::Config(format!(
                    "an ink radius of {radius} of the side: it must be in (0, 0.5]"
                )))
            }
            _ => Ok(()),
        }
    }

    /// `ink` (`side x side`, row-major, ink = 1) placed as this framing says, same side.
    pub fn apply(&self, ink: &[f32], side: usize) -> Vec<f32> {
        let Framing::Centred { radius } = *self else {
            return ink.to_vec();
        };
        let Some(m) = InkMoments::of(ink, side) else {
            return ink.to_vec();
        };
        let (cx, cy) = (m.centroid_x, m.centroid_y);
        let gyration = m.gyration.max(0.5);
        let scale = radius * side as f64 / gyration;
        let centre = (side as f64 - 1.0) / 2.0;
        let mut out = vec![0.0f32; side * side];
        for (i, o) in out.iter_mut().enumerate() {
            let x = ((i % side) as f64 - centre) / scale + cx;
            let y = ((i / side) as f64 - centre) / scale + cy;
            *o = bilinear(ink, side, x, y);
        }
        out
    }
}

/// Where a drawing's ink sits and how far it spreads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InkMoments {
    /// Ink-weighted mean column, pixels from the left edge.
    pub centroid_x: f64,
    /// Ink-weighted mean row, pixels from the top edge.
    pub centroid_y: f64,
    /// Radius of gyration: root of the ink-weighted mean squared distance from the centroid,
    /// pixels.
    pub gyration: f64,
}

impl InkMoments {
    /// The moments of `ink` (`side x side`, row-major, ink = 1); `None` for a blank image.
    pub fn of(ink: &[f32], side: usize) -> Option<Self> {
        let mass: f64 = ink.iter().map(|&v| v as f64).sum();
        if mass <= 0.0 || side == 0 {
            return None;
        }
        let mean = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
            ink.iter()
                .enumerate()
                .map(|(i, &v)| v as f64 * f((i % side) as f64, (i / side) as f64))
                .sum::<f64>()
                / mass
        };
        let centroid_x = mean(&|x, _| x);
        let centroid_y = mean(&|_, y| y);
        let spread = mean(&|x, y| (x - centroid_x).powi(2) + (y - centroid_y).powi(2));
        Some(Self {
            centroid_x,
            centroid_y,
            gyration: spread.sqrt(),
        })
    }

    /// Distance of the centroid from the centre of a `side`-pixel frame, pixels.
    pub fn offset_from_centre(&self, side: usize) -> f64 {
        let centre = (side as f64 - 1.0) / 2.0;
        (self.centroid_x - centre).hypot(self.centroid_y - centre)
    }
}

/// Reads one Omniglot PNG, frames it (at its own resolution), shrinks it to `side x side` and
/// returns ink in `[0, 1]` (1 = black stroke).
pub fn load_image(path: &Path, side: usize, framing: Framing) -> Result<Vec<f32>, TrainError> {
    let img = image::open(path)
        .map_err(|e| TrainError::Image {
            path: path.display().to_string(),
            message: e.to_string(),
        })?
        .to_luma8();
    Ok(ink(&frame_and_shrink(img, side, framing)))
}

/// A grey image (dark ink on a light ground) framed by `framing` at its own resolution, then
/// shrunk to `side x side` pixels as the networks see it ([`shrink`]). A framed image that is
/// not square is first stretched to a square, as [`shrink`] would.
pub fn frame_and_shrink(img: image::GrayImage, side: usize, framing: Framing) -> image::GrayImage {
    if framing == Framing::AsDrawn {
        return shrink(img, side);
    }
    let full = img.width().max(img.height()).max(1);
    let square = if img.width() == img.height() {
        img
    } else {
        shrink(img, full as usize)
    };
    let framed = framing.apply(&ink(&square), full as usize);
    let grey = image::GrayImage::from_fn(full, full, |x, y| {
        let v = framed[(y * full + x) as usize].clamp(0.0, 1.0);
        image::Luma([((1.0 - v) * 255.0).round() as u8])
    });
    shrink(grey, side)
}

/// A grey image at `side x side` pixels, as the networks see it (triangle filter).
pub fn shrink(img: image::GrayImage, side: usize) -> image::GrayImage {
    if img.width() as usize == side && img.height() as usize == side {
        img
    } else {
        image::imageops::resize(
            &img,
            side as u32,
            side as u32,
            image::imageops::FilterType::Triangle,
        )
    }
}

/// Ink in `[0, 1]` (1 = black) of every pixel, row-major.
pub fn ink(img: &image::GrayImage) -> Vec<f32> {
    img.pixels().map(|p| 1.0 - p.0[0] as f32 / 255.0).collect()
}

fn sorted_entries(dir: &Path, want_dirs: bool) -> Result<Vec<PathBuf>, TrainError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let path = entry.map_err(|e| TrainError::io(dir, e))?.path();
        if path.is_dir() == want_dirs {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The alphabets (sub-directories) of an Omniglot set, sorted.
pub fn alphabets(root: &Path) -> Result<Vec<String>, TrainError> {
    Ok(sorted_entries(root, true)?
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect())
}

/// The character directories of the given alphabets (all when `only` is empty), sorted, with
/// their `alphabet/character` names.
pub fn character_dirs(root: &Path, only: &[String]) -> Result<Vec<(String, PathBuf)>, TrainError> {
    let mut out = Vec::new();
    for alphabet in alphabets(root)? {
        if !only.is_empty() && !only.contains(&alphabet) {
            continue;
        }
        for dir in sorted_entries(&root.join(&alphabet), true)? {
            let ch = dir.file_name().unwrap_or_default().to_string_lossy();
            out.push((format!("{alphabet}/{ch}"), dir.clone()));
        }
    }
    Ok(out)
}

/// The PNG files of one character directory, sorted (one per drawer).
pub fn character_images(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    Ok(sorted_entries(dir, false)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect())
}

/// Loads an Omniglot set (`root/<alphabet>/<character>/*.png`) at `side x side` pixels, each
/// drawing framed by `framing`.
pub fn load_omniglot(root: &Path, side: usize, framing: Framing) -> Result<Dataset, TrainError> {
    let dirs = character_dirs(root, &[])?;
    if dirs.is_empty() {
        return Err(TrainError::Layout(format!(
            "{}: no <alphabet>/<character>/ directories",
            root.display()
        )));
    }
    let classes = dirs
        .par_iter()
        .map(|(name, dir)| {
            let images = character_images(dir)?
                .iter()
                .map(|p| load_image(p, side, framing))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Class {
                name: name.clone(),
                images,
            })
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    Ok(Dataset {
        side,
        framing,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_quarter_turns_are_the_identity_and_one_turn_moves_a_corner() {
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let once = rotate_quarters(&img, 3, 1);
        assert_ne!(once, img);
        let back = (0..3).fold(once, |a, _| rotate_quarters(&a, 3, 1));
        assert_eq!(back, img);
        assert_eq!(rotate_quarters(&img, 3, 2)[0], 8.0);
    }

    #[test]
    fn the_eight_symmetries_are_distinct_and_a_mirror_undoes_itself() {
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let all: Vec<Vec<f32>> = (0..8).map(|k| symmetry(&img, 3, k)).collect();
        for a in 0..8 {
            for b in a + 1..8 {
                assert_ne!(all[a], all[b], "symmetries {a} and {b}");
            }
        }
        assert_eq!(
            symmetry(&img, 3, 4),
            vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0]
        );
        assert_eq!(symmetry(&symmetry(&img, 3, 4), 3, 4), img);
    }

    #[test]
    fn rotations_then_mirrors_give_eight_named_classes_per_character() {
        let data = Dataset {
            side: 2,
            framing: Framing::AsDrawn,
            classes: vec![Class {
                name: "Latin/a".into(),
                images: vec![vec![1.0, 0.0, 0.0, 0.0]],
            }],
        }
        .with_rotated_classes()
        .with_mirrored_classes();
        assert_eq!(data.classes.len(), 8);
        assert_eq!(data.classes[7].name, "Latin/a@270@mirror");
        for k in 0..8 {
            assert_eq!(
                data.classes[k].images[0],
                symmetry(&[1.0, 0.0, 0.0, 0.0], 2, k)
            );
        }
    }

    #[test]
    fn centred_framing_moves_the_ink_to_the_centre_at_the_asked_radius() {
        // A small off-centre cross.
        let side = 60;
        let mut img = vec![0.0f32; side * side];
        for t in 0..11 {
            img[(12 + t) * side + 17] = 1.0;
            img[17 * side + 12 + t] = 1.0;
        }
        let m = InkMoments::of(&img, side).unwrap();
        assert!((m.centroid_x - 17.0).abs() < 0.5 && (m.centroid_y - 17.0).abs() < 0.5);
        assert!(m.gyration < 4.0 && m.offset_from_centre(side) > 15.0);
        let framed = Framing::Centred { radius: 0.2 }.apply(&img, side);
        let m = InkMoments::of(&framed, side).unwrap();
        assert!(m.offset_from_centre(side) < 0.3, "{m:?}");
        assert!(
            (m.gyration / (0.2 * side as f64) - 1.0).abs() < 0.05,
            "{m:?}"
        );
        // As drawn, and a blank page whatever the framing, are left as they are.
        assert_eq!(Framing::AsDrawn.apply(&img, side), img);
        let blank = vec![0.0f32; side * side];
        assert_eq!(Framing::OMNIGLOT.apply(&blank, side), blank);
        assert_eq!(InkMoments::of(&blank, side), None);
    }

    #[test]
    fn a_radius_outside_the_frame_is_refused() {
        for radius in [0.0, -0.1, 0.6, f64::NAN] {
            assert!(Framing::Centred { radius }.validate().is_err(), "{radius}");
        }
        assert!(Framing::OMNIGLOT.validate().is_ok());
        assert!(Framing::AsDrawn.validate().is_ok());
    }
}
