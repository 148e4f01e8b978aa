//! Contact sheets: a grid of RGB images with optional row and column headers (pictures or text
//! labels), for showing many results side by side in one PNG.
//!
//! Column widths and row heights follow the largest picture in each column and row, so images of
//! different sizes line up; every picture is centred in its cell. With
//! [`SheetOptions::cell_size`] every picture is first scaled to fit that square, which is what
//! a sheet of full-size photos usually wants.

use image::{imageops, Rgb, RgbImage};

use crate::font::{draw_text, text_width, GLYPH_H};

/// A row or column header: a picture (for instance the style image) or a text label.
#[derive(Debug, Clone)]
pub enum Header {
    /// A picture, scaled like the cells when [`SheetOptions::cell_size`] is set.
    Image(RgbImage),
    /// Text, drawn with the built-in bitmap font (letters appear as capitals).
    Label(String),
}

impl From<RgbImage> for Header {
    fn from(image: RgbImage) -> Self {
        Header::Image(image)
    }
}

impl From<&str> for Header {
    fn from(text: &str) -> Self {
        Header::Label(text.to_string())
    }
}

impl From<String> for Header {
    fn from(text: String) -> Self {
        Header::Label(text)
    }
}

/// How a sheet is laid out.
#[derive(Debug, Clone, Copy)]
pub struct SheetOptions {
    /// When set, every picture is scaled (aspect kept) so that its longer side is this many
    /// pixels; `None` keeps pictures at their own size.
    pub cell_size: Option<u32>,
    /// Space between cells and around the sheet, pixels.
    pub gap: u32,
    /// Colour of the background and gaps.
    pub background: Rgb<u8>,
    /// Colour of text labels.
    pub text_colour: Rgb<u8>,
    /// Size of one font pixel of text labels, image pixels.
    pub text_scale: u32,
}

impl Default for SheetOptions {
    fn default() -> Self {
        Self {
            cell_size: None,
            gap: 4,
            background: Rgb([255, 255, 255]),
            text_colour: Rgb([0, 0, 0]),
            text_scale: 2,
        }
    }
}

/// Why a sheet could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    /// Row headers were given but not one per row.
    #[error("{headers} row headers for {rows} rows")]
    RowHeaders {
        /// Headers given.
        headers: usize,
        /// Rows in the grid.
        rows: usize,
    },
    /// Column headers were given but not one per column.
    #[error("{headers} column headers for {columns} columns")]
    ColumnHeaders {
        /// Headers given.
        headers: usize,
        /// Columns in the grid (the longest row).
        columns: usize,
    },
    /// The sheet would be larger than 2^31 pixels a side or hold nothing.
    #[error("contact sheet of {width}x{height} pixels cannot be made")]
    Size {
        /// Width it would have, pixels.
        width: u64,
        /// Height it would have, pixels.
        height: u64,
    },
}

/// One laid-out item: a picture or a text label.
enum Tile {
    Picture(RgbImage),
    Text(String),
}

impl Tile {
    fn size(&self, scale: u32) -> (u32, u32) {
        match self {
            Tile::Picture(p) => p.dimensions(),
            Tile::Text(t) => (text_width(t, scale), GLYPH_H * scale),
        }
    }
}

fn fit(image: &RgbImage, cell_size: Option<u32>) -> RgbImage {
    let Some(side) = cell_size else {
        return image.clone();
    };
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 || side == 0 {
        return RgbImage::new(0, 0);
    }
    let scale = side as f64 / w.max(h) as f64;
    let nw = ((w as f64 * scale).round() as u32).max(1);
    let nh = ((h as f64 * scale).round() as u32).max(1);
    if (nw, nh) == (w, h) {
        image.clone()
    } else {
        imageops::resize(image, nw, nh, imageops::FilterType::Triangle)
    }
}

fn header_tile(header: &Header, options: &SheetOptions) -> Tile {
    match header {
        Header::Image(image) => Tile::Picture(fit(image, options.cell_size)),
        Header::Label(text) => Tile::Text(text.clone()),
    }
}

/// Lays `rows` out as a grid (rows may be ragged: missing cells stay empty), with one header per
/// row to the left when `row_headers` is not empty and one per column on top when
/// `column_headers` is not empty; when both are given the top-left corner stays empty.
pub fn contact_sheet(
    rows: &[Vec<RgbImage>],
    row_headers: &[Header],
    column_headers: &[Header],
    options: &SheetOptions,
) -> Result<RgbImage, SheetError> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    if !row_headers.is_empty() && row_headers.len() != rows.len() {
        return Err(SheetError::RowHeaders {
            headers: row_headers.len(),
            rows: rows.len(),
        });
    }
    if !column_headers.is_empty() && column_headers.len() != columns {
        return Err(SheetError::ColumnHeaders {
            headers: column_headers.len(),
            columns,
        });
    }
    let scale = options.text_scale.max(1);
    let has_row_headers = !row_headers.is_empty();
    let has_column_headers = !column_headers.is_empty();

    // A grid of optional tiles including the header row and column.
    let mut grid: Vec<Vec<Option<Tile>>> = Vec::new();
    if has_column_headers {
        let mut top: Vec<Option<Tile>> = Vec::new();
        if has_row_headers {
            top.push(None);
        }
        top.extend(column_headers.iter().map(|h| Some(header_tile(h, options))));
        grid.push(top);
    }
    for (r, row) in rows.iter().enumerate() {
        let mut line: Vec<Option<Tile>> = Vec::new();
        if has_row_headers {
            line.push(Some(header_tile(&row_headers[r], options)));
        }
        line.extend(
            row.iter()
                .map(|image| Some(Tile::Picture(fit(image, options.cell_size)))),
        );
        grid.push(line);
    }
    let grid_columns = columns + usize::from(has_row_headers);

    let mut widths = vec![0u64; grid_columns];
    let mut heights = vec![0u64; grid.len()];
    for (r, line) in grid.iter().enumerate() {
        for (c, tile) in line.iter().enumerate() {
            if let Some(tile) = tile {
                let (w, h) = tile.size(scale);
                widths[c] = widths[c].max(w as u64);
                heights[r] = heights[r].max(h as u64);
            }
        }
    }
    let gap = options.gap as u64;
    let width = widths.iter().sum::<u64>() + gap * (grid_columns as u64 + 1);
    let height = heights.iter().sum::<u64>() + gap * (grid.len() as u64 + 1);
    if width == 0 || height == 0 || width > i32::MAX as u64 || height > i32::MAX as u64 {
        return Err(SheetError::Size { width, height });
    }

    let mut sheet = RgbImage::from_pixel(width as u32, height as u32, options.background);
    let mut y = gap;
    for (r, line) in grid.iter().enumerate() {
        let mut x = gap;
        for (c, tile) in line.iter().enumerate() {
            if let Some(tile) = tile {
                let (w, h) = tile.size(scale);
                let left = (x + (widths[c] - w as u64) / 2) as i64;
                let top = (y + (heights[r] - h as u64) / 2) as i64;
                match tile {
                    Tile::Picture(p) => imageops::replace(&mut sheet, p, left, top),
                    Tile::Text(t) => {
                        draw_text(&mut sheet, left, top, t, scale, options.text_colour)
                    }
                }
            }
            x += widths[c] + gap;
        }
        y += heights[r] + gap;
    }
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    #[test]
    fn grid_without_headers_places_cells_with_gaps() {
        let rows = vec![
            vec![solid(10, 10, 10), solid(20, 10, 20)],
            vec![solid(10, 6, 30)],
        ];
        let options = SheetOptions {
            gap: 2,
            ..SheetOptions::default()
        };
        let sheet = contact_sheet(&rows, &[], &[], &options).unwrap();
        // Columns 10 and 20 wide, rows 10 and 6 high, three gaps each way.
        assert_eq!(
            sheet.dimensions(),
            (2 + 10 + 2 + 20 + 2, 2 + 10 + 2 + 6 + 2)
        );
        assert_eq!(sheet.get_pixel(2, 2).0, [10; 3]);
        assert_eq!(sheet.get_pixel(14, 2).0, [20; 3]);
        assert_eq!(sheet.get_pixel(2, 14).0, [30; 3]);
        // The gap and the missing cell stay background.
        assert_eq!(sheet.get_pixel(0, 0).0, [255; 3]);
        assert_eq!(sheet.get_pixel(20, 16).0, [255; 3]);
    }

    #[test]
    fn headers_add_a_row_and_a_column_and_labels_draw_ink() {
        let rows = vec![vec![solid(8, 8, 0), solid(8, 8, 0)]];
        let options = SheetOptions {
            gap: 1,
            text_scale: 1,
            ..SheetOptions::default()
        };
        let sheet = contact_sheet(
            &rows,
            &[Header::Image(solid(4, 8, 50))],
            &["A".into(), "B".into()],
            &options,
        )
        .unwrap();
        assert_eq!(
            sheet.dimensions(),
            (1 + 4 + 1 + 8 + 1 + 8 + 1, 1 + 5 + 1 + 8 + 1)
        );
        let ink = sheet.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(ink > 2 * 64, "labels drew no ink");
        assert_eq!(sheet.get_pixel(1, 7).0, [50; 3]);
    }

    #[test]
    fn cell_size_scales_pictures_to_fit() {
        let rows = vec![vec![solid(200, 100, 7)]];
        let options = SheetOptions {
            cell_size: Some(50),
            gap: 0,
            ..SheetOptions::default()
        };
        let sheet = contact_sheet(&rows, &[], &[], &options).unwrap();
        assert_eq!(sheet.dimensions(), (50, 25));
    }

    #[test]
    fn header_counts_must_match() {
        let rows = vec![vec![solid(2, 2, 0)]];
        let options = SheetOptions::default();
        assert!(matches!(
            contact_sheet(&rows, &["a".into(), "b".into()], &[], &options),
            Err(SheetError::RowHeaders {
                headers: 2,
                rows: 1
            })
        ));
        assert!(matches!(
            contact_sheet(&rows, &[], &["a".into(), "b".into()], &options),
            Err(SheetError::ColumnHeaders { .. })
        ));
        assert!(matches!(
            contact_sheet(&[], &[], &[], &SheetOptions { gap: 0, ..options }),
            Err(SheetError::Size { .. })
        ));
    }
}
