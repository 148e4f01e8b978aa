//! `visage stylize`: feed-forward style transfer (see the `visage-fast-style` crate): one or more
//! of the 26 built-in styles (or blends), or the style of any picture, on images or whole folders,
//! with an optional contact sheet of every image under every style.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use visage_fast_style::{
    fit_longer_side, multistyle_path, stylize, ArbitraryStyle, MultiStyleNet, StyleOptions,
    StyleVector, StyleWeights,
};
use visage_formats::manifest::models_dir;
use visage_image::{contact_sheet, decode_file, DecodeOptions, Header, RgbImage, SheetOptions};

use crate::args::StylizeArgs;

/// File extensions read from folders.
const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "gif", "bmp", "pnm", "ppm", "pgm",
];

/// One style to apply.
enum Style {
    BuiltIn {
        spec: String,
        weights: StyleWeights,
    },
    Picture {
        path: PathBuf,
        thumbnail: RgbImage,
        vector: StyleVector,
    },
}

impl Style {
    fn label(&self) -> String {
        match self {
            Style::BuiltIn { spec, .. } => format!("style {spec}"),
            Style::Picture { path, .. } => stem(path),
        }
    }

    /// A file-name-safe suffix for outputs when several styles are applied.
    fn suffix(&self) -> String {
        let raw = match self {
            Style::BuiltIn { spec, .. } => format!("style{spec}"),
            Style::Picture { path, .. } => stem(path),
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// The images named: files as given, folders expanded to their images (sorted by name).
fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot list {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().is_some_and(|e| {
                            IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())
                        })
                })
                .collect();
            if found.is_empty() {
                bail!("{}: no images in this folder", input.display());
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn is_image_file_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
}

/// Runs `visage stylize`.
pub fn run(args: StylizeArgs) -> anyhow::Result<ExitCode> {
    if args.style.is_empty() && args.style_image.is_empty() {
        bail!("give a style: --style K (0 to 25, or a blend such as 3:0.5,12:0.5) or --style-image FILE");
    }
    if !(0.0..=1.0).contains(&args.strength) {
        bail!("--strength must be between 0 and 1, got {}", args.strength);
    }
    if args.threads == Some(0) || args.reps == 0 {
        bail!("--threads and --reps must be at least 1");
    }
    let options = StyleOptions {
        strength: args.strength,
        preserve_color: args.preserve_color,
    };
    let decode = DecodeOptions {
        max_pixels: args.max_pixels,
        ..DecodeOptions::default()
    };
    // Bad styles fail before any model is loaded or image read.
    let mut specs = Vec::new();
    for spec in &args.style {
        specs.push((spec.clone(), StyleWeights::parse(spec)?));
    }
    let inputs = expand_inputs(&args.inputs)?;
    let n_styles = specs.len() + args.style_image.len();
    let single_file = inputs.len() == 1 && n_styles == 1 && is_image_file_name(&args.output);
    if !single_file && is_image_file_name(&args.output) {
        bail!(
            "{}: with several images or styles, -o names a folder",
            args.output.display()
        );
    }
    if !single_file {
        std::fs::create_dir_all(&args.output).with_context(|| {
            format!("cannot create the output folder {}", args.output.display())
        })?;
    }

    let dir = models_dir(args.models.models.as_deref())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let multistyle = if specs.is_empty() {
        None
    } else {
        Some(MultiStyleNet::load(&multistyle_path(&dir)?)?)
    };
    let arbitrary = if args.style_image.is_empty() {
        None
    } else {
        Some(ArbitraryStyle::load(&dir)?)
    };
    let mut styles: Vec<Style> = specs
        .into_iter()
        .map(|(spec, weights)| Style::BuiltIn { spec, weights })
        .collect();
    for path in &args.style_image {
        let picture = decode_file(path, &decode)?;
        let net = arbitrary.as_ref().expect("loaded above");
        let vector = pool
            .install(|| net.style_vector(&picture))
            .with_context(|| format!("style image {}", path.display()))?;
        styles.push(Style::Picture {
            path: path.clone(),
            thumbnail: picture,
            vector,
        });
    }

    let bar = if args.json || inputs.len() * styles.len() < 2 {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((inputs.len() * styles.len()) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]")
            .expect("valid template"),
    );
    let mut failed = false;
    let mut sheet_rows: Vec<(String, Vec<RgbImage>)> = Vec::new();
    for input in &inputs {
        let photo = match decode_file(input, &decode) {
            Ok(p) => fit_longer_side(p, args.max_size),
            Err(e) => {
                bar.suspend(|| eprintln!("visage: error: {e}"));
                bar.inc(styles.len() as u64);
                failed = true;
                continue;
            }
        };
        let mut row = Vec::new();
        for style in &styles {
            bar.set_message(format!("{} / {}", stem(input), style.label()));
            let mut best = f64::INFINITY;
            let mut result = Ok(RgbImage::new(0, 0));
            for _ in 0..args.reps {
                let start = Instant::now();
                result = pool.install(|| match style {
                    Style::BuiltIn { weights, .. } => stylize(
                        multistyle.as_ref().expect("loaded above"),
                        &photo,
                        weights,
                        &options,
                    ),
                    Style::Picture { vector, .. } => arbitrary
                        .as_ref()
                        .expect("loaded above")
                        .stylize(&photo, vector, &options),
                });
                best = best.min(start.elapsed().as_secs_f64());
                if result.is_err() {
                    break;
                }
            }
            bar.inc(1);
            let out = match result {
                Ok(out) => out,
                Err(e) => {
                    bar.suspend(|| eprintln!("visage: error: {}: {e}", input.display()));
                    failed = true;
                    continue;
                }
            };
            let path = if single_file {
                args.output.clone()
            } else if styles.len() == 1 {
                args.output.join(format!("{}.png", stem(input)))
            } else {
                args.output
                    .join(format!("{}_{}.png", stem(input), style.suffix()))
            };
            out.save(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "input": input.display().to_string(),
                        "output": path.display().to_string(),
                        "style": style.label(),
                        "width": out.width(),
                        "height": out.height(),
                        "ms": best * 1000.0,
                        "threads": pool.current_num_threads(),
                    })
                );
            } else {
                bar.suspend(|| {
                    println!(
                        "{} -> {} ({}, {}x{}, {:.0} ms)",
                        input.display(),
                        path.display(),
                        style.label(),
                        out.width(),
                        out.height(),
                        best * 1000.0
                    )
                });
            }
            if args.sheet.is_some() {
                row.push(out);
            }
        }
        if args.sheet.is_some() {
            let mut cells = vec![photo];
            cells.extend(row);
            sheet_rows.push((stem(input), cells));
        }
    }
    bar.finish_and_clear();

    if let Some(sheet_path) = &args.sheet {
        let options = SheetOptions {
            cell_size: Some(args.sheet_cell),
            ..SheetOptions::default()
        };
        let mut headers = vec![Header::Label("photo".into())];
        headers.extend(styles.iter().map(|s| match s {
            Style::BuiltIn { .. } => Header::Label(s.label()),
            Style::Picture { thumbnail, .. } => Header::Image(thumbnail.clone()),
        }));
        let rows: Vec<Vec<RgbImage>> = sheet_rows.into_iter().map(|(_, r)| r).collect();
        let sheet = contact_sheet(&rows, &[], &headers, &options)?;
        sheet
            .save(sheet_path)
            .with_context(|| format!("cannot write {}", sheet_path.display()))?;
        if !args.json {
            println!("contact sheet: {}", sheet_path.display());
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
