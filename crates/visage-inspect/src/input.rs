//! What a network looks at (an image, a signal or a volume), its feature maps, and cropping the
//! part of an input that one receptive field covers.

use image::{Rgb, RgbImage};

/// Colour of crop pixels that fall outside the image (in the padding), chosen to be visibly not
/// part of any photograph.
pub const PAD_COLOUR: Rgb<u8> = Rgb([255, 0, 255]);

/// One input, as the network receives it (after resizing or alignment).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An RGB image; axes `[y, x]`, pixels.
    Image(RgbImage),
    /// A 1D signal (for example EKG millivolts); axis `[t]`, samples.
    Signal(Vec<f32>),
    /// A volume, `data[(z * dims[1] + y) * dims[2] + x]`; axes `[z, y, x]`, voxels.
    Volume {
        /// Extent per axis `[z, y, x]`, voxels.
        dims: [usize; 3],
        /// Voxel values.
        data: Vec<f32>,
    },
}

/// A cropped receptive field. Samples outside the input are marked, never invented.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// Image crop, exactly as large as the field; outside pixels are [`PAD_COLOUR`].
    Image(RgbImage),
    /// Signal window, as long as the field; outside samples are `None`.
    Signal(Vec<Option<f32>>),
    /// Sub-volume `[z, y, x]` as large as the field; outside voxels are `None`.
    Volume {
        /// Extent per axis, voxels.
        dims: [usize; 3],
        /// Voxel values, `None` outside the volume.
        data: Vec<Option<f32>>,
    },
}

impl Input {
    /// Number of spatial axes (1, 2 or 3).
    pub fn axes(&self) -> usize {
        match self {
            Input::Signal(_) => 1,
            Input::Image(_) => 2,
            Input::Volume { .. } => 3,
        }
    }

    /// The picture, for the networks that take images; an error naming the axes otherwise.
    pub fn image(&self) -> Result<&RgbImage, crate::InspectError> {
        match self {
            Input::Image(img) => Ok(img),
            other => Err(crate::InspectError::Axes {
                expected: 2,
                got: other.axes(),
            }),
        }
    }

    /// Extent per axis (outermost first), in samples.
    pub fn extent(&self) -> Vec<usize> {
        match self {
            Input::Signal(s) => vec![s.len()],
            Input::Image(img) => vec![img.height() as usize, img.width() as usize],
            Input::Volume { dims, .. } => dims.to_vec(),
        }
    }

    /// Crops the half-open interval per axis (`span` as long as [`Input::axes`]); parts outside
    /// the input are marked as padding. `None` when the span has the wrong number of axes.
    pub fn crop(&self, span: &[(isize, isize)]) -> Option<Patch> {
        if span.len() != self.axes() {
            return None;
        }
        let len = |(a, b): (isize, isize)| (b - a).max(0) as usize;
        match self {
            Input::Image(img) => {
                let (h, w) = (len(span[0]), len(span[1]));
                let mut out = RgbImage::from_pixel(w as u32, h as u32, PAD_COLOUR);
                for y in 0..h {
                    let sy = span[0].0 + y as isize;
                    if sy < 0 || sy >= img.height() as isize {
                        continue;
                    }
                    for x in 0..w {
                        let sx = span[1].0 + x as isize;
                        if sx >= 0 && sx < img.width() as isize {
                            out.put_pixel(x as u32, y as u32, *img.get_pixel(sx as u32, sy as u32));
                        }
                    }
                }
                Some(Patch::Image(out))
            }
            Input::Signal(s) => Some(Patch::Signal(
                (span[0].0..span[0].1)
                    .map(|t| usize::try_from(t).ok().and_then(|t| s.get(t).copied()))
                    .collect(),
            )),
            Input::Volume { dims, data } => {
                let d = [len(span[0]), len(span[1]), len(span[2])];
                let mut out = Vec::with_capacity(d[0] * d[1] * d[2]);
                let inside =
                    |v: isize, n: usize| (v >= 0 && (v as usize) < n).then_some(v as usize);
                for z in 0..d[0] {
                    for y in 0..d[1] {
                        for x in 0..d[2] {
                            let p = (
                                inside(span[0].0 + z as isize, dims[0]),
                                inside(span[1].0 + y as isize, dims[1]),
                                inside(span[2].0 + x as isize, dims[2]),
                            );
                            out.push(match p {
                                (Some(z), Some(y), Some(x)) => {
                                    Some(data[(z * dims[1] + y) * dims[2] + x])
                                }
                                _ => None,
                            });
                        }
                    }
                }
                Some(Patch::Volume { dims: d, data: out })
            }
        }
    }
}

/// One layer's activations for one input: `channels` maps over the spatial `dims`, stored
/// channel-major (`data[c * dims.iter().product() + flat_position]`, positions row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMap {
    /// Number of units (channels).
    pub channels: usize,
    /// Spatial extent per axis, in output positions.
    pub dims: Vec<usize>,
    /// Values, channel-major.
    pub data: Vec<f32>,
}

impl FeatureMap {
    /// Positions per channel.
    pub fn plane_len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Channel `c`'s values, row-major over the spatial axes.
    pub fn channel(&self, c: usize) -> &[f32] {
        let n = self.plane_len();
        &self.data[c * n..(c + 1) * n]
    }

    /// The multi-axis position of flat index `i`.
    pub fn position(&self, mut i: usize) -> Vec<usize> {
        let mut pos = vec![0; self.dims.len()];
        for (a, &d) in self.dims.iter().enumerate().rev() {
            pos[a] = i % d.max(1);
            i /= d.max(1);
        }
        pos
    }

    /// The Gram matrix `G[k][k'] = Σ_positions a_k · a_k'` (`channels x channels`, row-major),
    /// the statistic style transfer matches; not normalised by the number of positions.
    pub fn gram(&self) -> Vec<f32> {
        let c = self.channels;
        let mut g = vec![0f32; c * c];
        for i in 0..c {
            let a = self.channel(i);
            for j in i..c {
                let b = self.channel(j);
                let v: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
                g[i * c + j] = v as f32;
                g[j * c + i] = v as f32;
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_pad_outside() {
        let img = RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8, y as u8, 7]));
        let Some(Patch::Image(p)) = Input::Image(img).crop(&[(-1, 2), (2, 6)]) else {
            panic!("image crop")
        };
        assert_eq!((p.width(), p.height()), (4, 3));
        assert_eq!(*p.get_pixel(0, 0), PAD_COLOUR);
        assert_eq!(*p.get_pixel(0, 1), Rgb([2, 0, 7]));
        assert_eq!(*p.get_pixel(1, 2), Rgb([3, 1, 7]));
        assert_eq!(*p.get_pixel(2, 2), PAD_COLOUR);
        let Some(Patch::Signal(s)) = Input::Signal(vec![1.0, 2.0]).crop(&[(-1, 2)]) else {
            panic!("signal crop")
        };
        assert_eq!(s, vec![None, Some(1.0), Some(2.0)]);
    }

    #[test]
    fn crops_sub_volumes() {
        let dims = [2, 3, 4];
        let data: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let v = Input::Volume { dims, data };
        assert_eq!(v.extent(), vec![2, 3, 4]);
        let Some(Patch::Volume { dims: d, data }) = v.crop(&[(1, 3), (0, 1), (3, 5)]) else {
            panic!("volume crop")
        };
        assert_eq!(d, [2, 1, 2]);
        // (z, y, x) = (1, 0, 3) is 12 + 3; the rest lies outside.
        assert_eq!(data, vec![Some(15.0), None, None, None]);
        assert!(v.crop(&[(0, 1)]).is_none());
    }

    #[test]
    fn gram_and_positions() {
        let m = FeatureMap {
            channels: 2,
            dims: vec![2, 3],
            data: vec![1., 0., 0., 0., 0., 2., 1., 1., 1., 1., 1., 1.],
        };
        assert_eq!(m.gram(), vec![5., 3., 3., 6.]);
        assert_eq!(m.position(5), vec![1, 2]);
    }
}
