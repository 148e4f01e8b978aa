//! Face alignment as dlib's `get_face_chip_details` + `extract_image_chip` do it for the face
//! encoder: a similarity fit from a fixed 5-point template to the landmarks gives a rotated
//! square in the image; that square is resampled into a 150x150 chip with bilinear
//! interpolation (f64, truncated to u8, black outside the image). Faces whose square is more
//! than about twice the chip size are first shrunk with `pyramid_down<2>`, computed only over
//! the part of the image the square covers.

use serde::Serialize;
use visage_image::pyramid::{point_down, pyramid_down, pyramid_down_region};
use visage_image::RgbImage;

use crate::similarity::find_similarity;
use crate::{FaceError, Point};

/// Side of the aligned chip, in pixels (what the face encoder takes).
pub const CHIP_SIZE: u32 = 150;

/// Margin around the template, as a fraction of the template's size on each side.
pub const CHIP_PADDING: f64 = 0.25;

/// dlib's 5-point face template in model order (eye corners, then the base of the nose), in
/// unit-square coordinates before padding.
const TEMPLATE_5: [[f64; 2]; 5] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

/// Where a chip is cut from the image: dlib's `chip_details`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ChipDetails {
    /// The square before rotation, as left, top, right, bottom in pixels (inclusive corners,
    /// so its width is `right − left + 1`).
    pub rect: [f64; 4],
    /// Rotation of the square about its centre, in radians (positive turns the x axis towards
    /// the y axis, i.e. clockwise on screen).
    pub angle: f64,
    /// Chip height, in pixels.
    pub rows: u32,
    /// Chip width, in pixels.
    pub cols: u32,
}

fn bad_landmarks(message: String) -> FaceError {
    FaceError::InvalidInput(message)
}

/// The chip of [`CHIP_SIZE`] pixels with [`CHIP_PADDING`] for a face's 5 landmarks (pixels, in
/// the shape predictor's order), as dlib's `get_face_chip_details(det, 150, 0.25)`.
///
/// Fails with [`FaceError::InvalidInput`] unless there are exactly 5 landmarks, or when they
/// collapse to a chip with no size (all points equal).
pub fn chip_details(landmarks: &[Point]) -> Result<ChipDetails, FaceError> {
    if landmarks.len() != TEMPLATE_5.len() {
        return Err(bad_landmarks(format!(
            "face alignment needs the 5 landmarks of the 5-point model, got {}",
            landmarks.len()
        )));
    }
    let size = f64::from(CHIP_SIZE);
    let from: Vec<[f64; 2]> = TEMPLATE_5
        .iter()
        .map(|p| p.map(|v| (CHIP_PADDING + v) / (2.0 * CHIP_PADDING + 1.0) * size))
        .collect();
    let to: Vec<[f64; 2]> = landmarks.iter().map(|p| [p.x as f64, p.y as f64]).collect();
    let tform = find_similarity(&from, &to)
        .ok_or_else(|| bad_landmarks("face alignment: no similarity fit".into()))?;

    // The similarity is scale · rotation + translation; the rotation becomes the angle, and
    // scale and translation become the square.
    let (px, py) = (tform.m[0][0], tform.m[1][0]);
    let angle = py.atan2(px);
    let scale = (px * px + py * py).sqrt();
    let centre = tform.apply([size / 2.0, size / 2.0]);
    // dlib's centered_drect: inclusive corners, so the span is one less than the size.
    let half = (size * scale - 1.0) / 2.0;
    let rect = [
        centre[0] - half,
        centre[1] - half,
        centre[0] + half,
        centre[1] + half,
    ];
    if !(rect.iter().all(|v| v.is_finite()) && angle.is_finite()) || rect[0] > rect[2] {
        return Err(bad_landmarks(format!(
            "face alignment: landmarks {landmarks:?} give no usable chip (scale {scale})"
        )));
    }
    Ok(ChipDetails {
        rect,
        angle,
        rows: CHIP_SIZE,
        cols: CHIP_SIZE,
    })
}

/// dlib's `drectangle`: double corners, inclusive, empty when a side is inverted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DRect {
    l: f64,
    t: f64,
    r: f64,
    b: f64,
}

impl DRect {
    fn is_empty(&self) -> bool {
        self.t > self.b || self.l > self.r
    }

    fn width(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.r - self.l + 1.0
        }
    }

    fn height(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.b - self.t + 1.0
        }
    }

    fn area(&self) -> f64 {
        self.width() * self.height()
    }

    fn centre(&self) -> [f64; 2] {
        [(self.l + self.r) / 2.0, (self.t + self.b) / 2.0]
    }

    /// One pyramid level down; built from the two mapped corners as dlib does (their bounding
    /// box).
    fn down(&self) -> DRect {
        let (x1, y1) = point_down(self.l, self.t);
        let (x2, y2) = point_down(self.r, self.b);
        DRect {
            l: x1.min(x2),
            t: y1.min(y2),
            r: x1.max(x2),
            b: y1.max(y2),
        }
    }

    /// dlib's conversion to an integer rectangle: each side rounded half up.
    fn round(&self) -> IRect {
        let f = |v: f64| (v + 0.5).floor() as i64;
        IRect {
            l: f(self.l),
            t: f(self.t),
            r: f(self.r),
            b: f(self.b),
        }
    }
}

/// dlib's integer `rectangle`, inclusive corners.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IRect {
    l: i64,
    t: i64,
    r: i64,
    b: i64,
}

impl IRect {
    fn is_empty(&self) -> bool {
        self.t > self.b || self.l > self.r
    }

    fn intersect(&self, o: &IRect) -> IRect {
        IRect {
            l: self.l.max(o.l),
            t: self.t.max(o.t),
            r: self.r.min(o.r),
            b: self.b.min(o.b),
        }
    }

    fn width(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.r - self.l + 1
        }
    }

    fn height(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.b - self.t + 1
        }
    }
}

fn rotate_about(centre: [f64; 2], p: [f64; 2], sin: f64, cos: f64) -> [f64; 2] {
    let (x, y) = (p[0] - centre[0], p[1] - centre[1]);
    [
        (cos * x - sin * y) + centre[0],
        (sin * x + cos * y) + centre[1],
    ]
}

/// A read-only RGB window onto pixel rows (the image itself, a sub-rectangle of it, or a
/// pyramid level).
struct View<'a> {
    data: &'a [u8],
    stride: usize,
    /// Offset of the window's top-left pixel in `data`, in bytes.
    origin: usize,
    width: i64,
    height: i64,
}

impl View<'_> {
    /// Bilinear sample at (x, y) in window pixels, truncated to u8 per channel; `None` when the
    /// 2x2 footprint leaves the window (dlib then paints the chip pixel black).
    fn bilinear(&self, x: f64, y: f64) -> Option<[u8; 3]> {
        // dlib's test, floor(x) >= 0 and floor(x) + 1 < width, is x >= 0 and x < width − 1 for
        // an integer width; testing in f64 also keeps NaN and huge values away from the casts.
        if !(x >= 0.0 && y >= 0.0 && x < (self.width - 1) as f64 && y < (self.height - 1) as f64) {
            return None;
        }
        // Non-negative, so truncation is the floor (and much cheaper than a libm call).
        let (left, top) = (x as usize, y as usize);
        let lr = x - left as f64;
        let tb = y - top as f64;
        let i = self.origin + top * self.stride + left * 3;
        let j = i + self.stride;
        let mut out = [0u8; 3];
        for (ch, o) in out.iter_mut().enumerate() {
            let tl = f64::from(self.data[i + ch]);
            let tr = f64::from(self.data[i + 3 + ch]);
            let bl = f64::from(self.data[j + ch]);
            let br = f64::from(self.data[j + 3 + ch]);
            let v = (1.0 - tb) * ((1.0 - lr) * tl + lr * tr) + tb * ((1.0 - lr) * bl + lr * br);
            *o = v as u8;
        }
        Some(out)
    }
}

/// Cuts the chip described by `details` out of `image`, as dlib's `extract_image_chip` with
/// bilinear interpolation: a `rows × cols` RGB image whose pixels outside the source are
/// black. An unrotated rectangle already of the chip's size is copied as a plain crop.
/// Non-finite details give an all-black chip.
pub fn extract_chip(image: &RgbImage, details: &ChipDetails) -> RgbImage {
    let [l, t, r, b] = details.rect;
    let rect = DRect { l, t, r, b };
    let (rows, cols) = (details.rows, details.cols);
    if !(details.rect.iter().all(|v| v.is_finite()) && details.angle.is_finite()) {
        return RgbImage::new(cols, rows);
    }
    if details.angle == 0.0 && f64::from(rows) == rect.height() && f64::from(cols) == rect.width() {
        return plain_crop(image, rect.round());
    }
    let mut chip = RgbImage::new(cols, rows);
    if rows == 0 || cols == 0 {
        return chip;
    }
    let size = f64::from(rows) * f64::from(cols);

    // Pixels we may read: the rotated square's bounding box, grown by the border the pyramid
    // filter needs at the depth used (each level halves the image and its filter reaches 2
    // pixels further), clipped to the image.
    let mut grow = 2.0;
    let mut down = rect.down();
    while down.area() > size {
        down = down.down();
        grow = grow * 2.0 + 2.0;
    }
    let centre = rect.centre();
    let (sin, cos) = details.angle.sin_cos();
    let corners = [[l, t], [r, t], [l, b], [r, b]].map(|p| rotate_about(centre, p, sin, cos));
    let mut rot = DRect {
        l: f64::INFINITY,
        t: f64::INFINITY,
        r: f64::NEG_INFINITY,
        b: f64::NEG_INFINITY,
    };
    for [x, y] in corners {
        rot = DRect {
            l: rot.l.min(x),
            t: rot.t.min(y),
            r: rot.r.max(x),
            b: rot.b.max(y),
        };
    }
    let (img_w, img_h) = (i64::from(image.width()), i64::from(image.height()));
    let grown = DRect {
        l: (rot.l - grow).max(0.0),
        t: (rot.t - grow).max(0.0),
        r: (rot.r + grow).min((img_w - 1) as f64),
        b: (rot.b + grow).min((img_h - 1) as f64),
    };
    let rounded = grown.round();
    // An empty crop leaves dlib's default rectangle (0, 0, -1, -1).
    let bbox = if rounded.is_empty() {
        IRect {
            l: 0,
            t: 0,
            r: -1,
            b: -1,
        }
    } else {
        rounded
    };
    let crop = bbox.intersect(&IRect {
        l: 0,
        t: 0,
        r: img_w - 1,
        b: img_h - 1,
    });

    // The pyramid level to sample from: shrink while the next level is still larger than the
    // chip. dlib computes this from the crop-relative square.
    let mut src_rect = DRect {
        l: l - bbox.l as f64,
        t: t - bbox.t as f64,
        r: r - bbox.l as f64,
        b: b - bbox.t as f64,
    };
    let mut level = 0u32;
    while src_rect.down().area() > size {
        level += 1;
        src_rect = src_rect.down();
    }
    // dlib sizes its pyramid by the same test on the uncropped square and then indexes it with
    // this level; only the level sampled matters, so exactly that many are built.

    let stride = image.width() as usize * 3;
    let pyramid;
    let view = if level == 0 {
        let (cw, ch) = (crop.width(), crop.height());
        View {
            data: image.as_raw(),
            stride,
            origin: if cw > 0 && ch > 0 {
                crop.t as usize * stride + crop.l as usize * 3
            } else {
                0
            },
            width: cw,
            height: ch,
        }
    } else {
        let mut img = if crop.is_empty() {
            RgbImage::new(0, 0)
        } else {
            pyramid_down_region(
                image,
                crop.l as u32,
                crop.t as u32,
                crop.width() as u32,
                crop.height() as u32,
            )
        };
        for _ in 1..level {
            if img.width() == 0 {
                break;
            }
            img = pyramid_down(&img);
        }
        pyramid = img;
        View {
            data: pyramid.as_raw(),
            stride: pyramid.width() as usize * 3,
            origin: 0,
            width: i64::from(pyramid.width()),
            height: i64::from(pyramid.height()),
        }
    };

    // The chip → source map sends the chip's corners (0,0), (cols−1,0), (0,rows−1) to the
    // rotated corners of the square at that level. dlib solves it through a pseudo-inverse;
    // with three exact correspondences that is the inverse of the corner matrix, applied here
    // in the same order of operations.
    let centre = src_rect.centre();
    let tl = rotate_about(centre, [src_rect.l, src_rect.t], sin, cos);
    let tr = rotate_about(centre, [src_rect.r, src_rect.t], sin, cos);
    let bl = rotate_about(centre, [src_rect.l, src_rect.b], sin, cos);
    let inv_c = if cols > 1 {
        1.0 / f64::from(cols - 1)
    } else {
        0.0
    };
    let inv_r = if rows > 1 {
        1.0 / f64::from(rows - 1)
    } else {
        0.0
    };
    let m = [
        [
            -tl[0] * inv_c + tr[0] * inv_c,
            -tl[0] * inv_r + bl[0] * inv_r,
        ],
        [
            -tl[1] * inv_c + tr[1] * inv_c,
            -tl[1] * inv_r + bl[1] * inv_r,
        ],
    ];

    let row_len = cols as usize * 3;
    for (r, row) in chip.chunks_exact_mut(row_len).enumerate() {
        let y = r as f64;
        for (c, px) in row.chunks_exact_mut(3).enumerate() {
            let x = c as f64;
            let sx = (m[0][0] * x + m[0][1] * y) + tl[0];
            let sy = (m[1][0] * x + m[1][1] * y) + tl[1];
            if let Some(v) = view.bilinear(sx, sy) {
                px.copy_from_slice(&v);
            }
        }
    }
    chip
}

/// dlib's `basic_extract_image_chip`: copy `loc` out of the image, black where it leaves it.
fn plain_crop(image: &RgbImage, loc: IRect) -> RgbImage {
    let (w, h) = (loc.width(), loc.height());
    let (Ok(w32), Ok(h32)) = (u32::try_from(w), u32::try_from(h)) else {
        return RgbImage::new(0, 0);
    };
    let mut chip = RgbImage::new(w32, h32);
    let area = loc.intersect(&IRect {
        l: 0,
        t: 0,
        r: i64::from(image.width()) - 1,
        b: i64::from(image.height()) - 1,
    });
    if area.is_empty() {
        return chip;
    }
    let n = area.width() as usize * 3;
    for y in area.t..=area.b {
        let src = (y as usize * image.width() as usize + area.l as usize) * 3;
        let dst = ((y - loc.t) as usize * w32 as usize + (area.l - loc.l) as usize) * 3;
        chip.as_mut()[dst..dst + n].copy_from_slice(&image.as_raw()[src..src + n]);
    }
    chip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_landmarks(scale: f64, dx: f64, dy: f64) -> Vec<Point> {
        TEMPLATE_5
            .iter()
            .map(|p| {
                let x = (CHIP_PADDING + p[0]) / 1.5 * 150.0 * scale + dx;
                let y = (CHIP_PADDING + p[1]) / 1.5 * 150.0 * scale + dy;
                Point::new(x.round() as i64, y.round() as i64)
            })
            .collect()
    }

    #[test]
    fn wrong_landmark_counts_and_collapsed_points_are_errors() {
        assert!(chip_details(&[]).is_err());
        assert!(chip_details(&[Point::new(1, 1); 2]).is_err());
        assert!(chip_details(&[Point::new(1, 1); 68]).is_err());
        assert!(chip_details(&[Point::new(7, 7); 5]).is_err());
    }

    #[test]
    fn template_points_give_an_upright_chip_of_the_template_size() {
        let d = chip_details(&template_landmarks(2.0, 100.0, 50.0)).unwrap();
        assert!(d.angle.abs() < 0.01, "{d:?}");
        let w = d.rect[2] - d.rect[0] + 1.0;
        assert!((w - 300.0).abs() < 3.0, "{d:?}");
        assert_eq!((d.rows, d.cols), (150, 150));
    }

    #[test]
    fn unrotated_same_size_chip_is_a_plain_crop() {
        let img = RgbImage::from_fn(40, 30, |x, y| [x as u8, y as u8, 7].into());
        let d = ChipDetails {
            rect: [30.0, -2.0, 39.0 + 10.0, 17.0],
            angle: 0.0,
            rows: 20,
            cols: 20,
        };
        let chip = extract_chip(&img, &d);
        assert_eq!(chip.dimensions(), (20, 20));
        assert_eq!(chip.get_pixel(0, 2).0, [30, 0, 7]);
        assert_eq!(chip.get_pixel(9, 19).0, [39, 17, 7]);
        assert_eq!(chip.get_pixel(10, 5).0, [0, 0, 0], "right of the image");
        assert_eq!(chip.get_pixel(3, 1).0, [0, 0, 0], "above the image");
    }

    #[test]
    fn identity_resampling_reproduces_the_image() {
        // A 150x150 square at integer corners with a tiny rotation takes the resampling path;
        // sampling lands on (almost) whole pixels.
        let img = RgbImage::from_fn(200, 200, |x, y| [x as u8, y as u8, 99].into());
        let d = ChipDetails {
            rect: [20.0, 30.0, 169.0, 179.0],
            angle: 1e-12,
            rows: 150,
            cols: 150,
        };
        let chip = extract_chip(&img, &d);
        for (x, y) in [(0u32, 0u32), (75, 80), (148, 148)] {
            let want = img.get_pixel(x + 20, y + 30).0;
            let got = chip.get_pixel(x, y).0;
            for (w, g) in want.iter().zip(got) {
                assert!(w.abs_diff(g) <= 1, "({x},{y}) {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn big_faces_use_the_pyramid_and_faces_outside_are_black() {
        let img = RgbImage::from_pixel(1000, 800, [200, 100, 50].into());
        let d = chip_details(&template_landmarks(4.0, 100.0, 50.0)).unwrap();
        let chip = extract_chip(&img, &d);
        assert_eq!(chip.dimensions(), (150, 150));
        assert_eq!(chip.get_pixel(75, 75).0, [200, 100, 50]);

        let away = chip_details(&template_landmarks(1.0, 5000.0, 5000.0)).unwrap();
        assert!(extract_chip(&img, &away).pixels().all(|p| p.0 == [0, 0, 0]));
        let bad = ChipDetails {
            rect: [f64::NAN, 0.0, 10.0, 10.0],
            angle: 0.1,
            rows: 150,
            cols: 150,
        };
        assert!(extract_chip(&img, &bad).pixels().all(|p| p.0 == [0, 0, 0]));
        let huge = ChipDetails {
            rect: [-1e300, -1e300, 1e300, 1e300],
            angle: 0.5,
            rows: 150,
            cols: 150,
        };
        assert_eq!(extract_chip(&img, &huge).dimensions(), (150, 150));
    }
}
