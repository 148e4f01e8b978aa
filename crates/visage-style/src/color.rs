//! Colour preservation by luminance transfer (Gatys et al. 2016, "Preserving colour in neural
//! artistic style transfer"): keep the stylised image's luminance and the content's chroma.

use crate::pixels::Planar;

/// The stylised image's luminance (Y of YIQ) with the content's chroma (I, Q). `content` is
/// resampled to the stylised image's size if needed.
pub fn preserve_color(content: &Planar, stylised: &Planar) -> Planar {
    let content = if (content.width, content.height) == (stylised.width, stylised.height) {
        content.clone()
    } else {
        content.resize(stylised.width, stylised.height)
    };
    let plane = stylised.width * stylised.height;
    let mut out = stylised.clone();
    for i in 0..plane {
        let rgb = |p: &Planar| [p.data[i], p.data[plane + i], p.data[2 * plane + i]];
        let [r, g, b] = rgb(stylised);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        let [r, g, b] = rgb(&content);
        let ci = 0.596 * r - 0.274 * g - 0.322 * b;
        let cq = 0.211 * r - 0.523 * g + 0.312 * b;
        out.data[i] = y + 0.956 * ci + 0.621 * cq;
        out.data[plane + i] = y - 0.272 * ci - 0.647 * cq;
        out.data[2 * plane + i] = y - 1.106 * ci + 1.703 * cq;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_stylised_takes_the_content_colour() {
        // Content pure red; stylised a grey of the same luminance: the result is red again.
        let content = Planar {
            width: 1,
            height: 1,
            data: vec![1.0, 0.0, 0.0],
        };
        let grey = Planar {
            width: 1,
            height: 1,
            data: vec![0.299; 3],
        };
        let out = preserve_color(&content, &grey);
        for (a, b) in out.data.iter().zip([1.0, 0.0, 0.0]) {
            assert!((a - b).abs() < 2e-3, "{:?}", out.data);
        }
    }
}
