//! What the gallery commands share: where the gallery and the encoding cache live, image
//! hashes, folder-per-person listings and progress bars.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use visage_eval::cache::EncodingCache;

use crate::args::{CacheArgs, DbArg};

/// Extensions read from folders (lower case); other files are ignored.
const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "gif", "bmp", "pgm", "ppm", "pnm",
];

/// The gallery file: `--db`, `$VISAGE_DB`, or gallery.sqlite in the user's data directory.
pub fn db_path(arg: &DbArg) -> anyhow::Result<PathBuf> {
    if let Some(p) = &arg.db {
        return Ok(p.clone());
    }
    dirs::data_dir()
        .map(|d| d.join("visage").join("gallery.sqlite"))
        .ok_or_else(|| {
            anyhow!("cannot find the user's data directory for the default gallery; pass --db PATH")
        })
}

/// The encoding cache to use, or `None` with `--no-cache`.
pub fn open_cache(args: &CacheArgs) -> anyhow::Result<Option<EncodingCache>> {
    if args.no_cache {
        return Ok(None);
    }
    let path = match &args.cache {
        Some(p) => p.clone(),
        None => dirs::cache_dir()
            .map(|d| d.join("visage").join("encodings.sqlite"))
            .ok_or_else(|| {
                anyhow!("cannot find the user's cache directory; pass --cache FILE or --no-cache")
            })?,
    };
    Ok(Some(EncodingCache::open(&path)?))
}

/// Lower-case hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    visage_formats::manifest::sha256_file(path)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// The sub-folders of `dir` (sorted by name) with their image files (sorted); folders without
/// images are left out.
pub fn person_folders(dir: &Path) -> anyhow::Result<Vec<(String, Vec<PathBuf>)>> {
    let read = |d: &Path| -> anyhow::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .with_context(|| format!("cannot read the folder {}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut people = Vec::new();
    for sub in read(dir)? {
        if !sub.is_dir() {
            continue;
        }
        let images: Vec<PathBuf> = read(&sub)?
            .into_iter()
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        if let (Some(name), false) = (sub.file_name().and_then(|n| n.to_str()), images.is_empty()) {
            people.push((name.to_string(), images));
        }
    }
    if people.is_empty() {
        return Err(anyhow!(
            "{} holds no sub-folder with images (expected one folder of photos per person)",
            dir.display()
        ));
    }
    Ok(people)
}

/// A progress bar on standard error for `len` items (hidden for fewer than 2, and by indicatif
/// itself when standard error is not a terminal).
pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    if len < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let template = format!("{{bar:30}} {{pos}}/{{len}} {what} {{per_sec}} eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// An `f32` distance as the `f64` JSON number with the same decimal digits (0.6, not
/// 0.6000000238418579), so printed thresholds read as they were set.
pub fn json_f32(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The gallery of `visage serve` and `visage keys`: `--db` (a file or a postgres:// URL),
/// `$VISAGE_DB`, or gallery.sqlite in the user's data directory.
pub fn db_location(arg: Option<&str>) -> anyhow::Result<String> {
    match arg {
        Some(location) => Ok(location.to_string()),
        None => dirs::data_dir()
            .map(|d| {
                d.join("visage")
                    .join("gallery.sqlite")
                    .display()
                    .to_string()
            })
            .ok_or_else(|| {
                anyhow!("cannot find the user's data directory for the default gallery; pass --db")
            }),
    }
}
