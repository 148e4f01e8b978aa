//! Lays out the results of `visage style` as a contact sheet: one row per content photo (the
//! photo first), one column per painting (the painting on top).
//!
//! ```sh
//! cargo run --release -p visage-style --example style_sheet -- OUT.png CELL PHOTOS_DIR PAINTINGS_DIR RESULTS_DIR photo1,photo2 painting1,painting2
//! ```
//!
//! Results are read from `RESULTS_DIR/<photo>__<painting>.png`, as bench/style_sheet.sh names them.

use std::path::PathBuf;

use visage_image::{contact_sheet, decode_file, DecodeOptions, Header, SheetOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 7 {
        return Err(
            "usage: style_sheet OUT.png CELL PHOTOS_DIR PAINTINGS_DIR RESULTS_DIR PHOTOS PAINTINGS"
                .into(),
        );
    }
    let cell: u32 = a[1].parse()?;
    let (photos_dir, paintings_dir, results) = (
        PathBuf::from(&a[2]),
        PathBuf::from(&a[3]),
        PathBuf::from(&a[4]),
    );
    let photos: Vec<&str> = a[5].split(',').collect();
    let paintings: Vec<&str> = a[6].split(',').collect();
    let read = |p: PathBuf| decode_file(&p, &DecodeOptions::default());
    let mut columns = vec![Header::Label(String::new())];
    for p in &paintings {
        columns.push(Header::Image(read(paintings_dir.join(format!("{p}.jpg")))?));
    }
    let mut rows = Vec::new();
    for photo in &photos {
        let mut row = vec![read(photos_dir.join(format!("{photo}.jpg")))?];
        for p in &paintings {
            row.push(read(results.join(format!("{photo}__{p}.png")))?);
        }
        rows.push(row);
    }
    let options = SheetOptions {
        cell_size: Some(cell),
        ..SheetOptions::default()
    };
    let sheet = contact_sheet(&rows, &[], &columns, &options)?;
    sheet.save(&a[0])?;
    println!("{}: {}x{}", a[0], sheet.width(), sheet.height());
    Ok(())
}
