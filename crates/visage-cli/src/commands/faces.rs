//! `visage detect`, `visage landmarks` and `visage encode`: one report per image.

use std::io::Write;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{json, Value};
use visage_face::{Face, Stage};
use visage_image::RgbImage;

use super::{detect_options, display, load_models_on};
use crate::args::FaceArgs;
use crate::images;

/// Images decoded and analysed together: enough to fill the network's batches and both cores,
/// few enough to keep memory bounded on large folders.
const IMAGES_PER_ROUND: usize = 8;

pub fn run(args: FaceArgs, stage: Stage) -> anyhow::Result<ExitCode> {
    let models = load_models_on(&args.models, args.device)?;
    let options = detect_options(&args.detect);
    let progress = progress_bar(args.images.len());
    let stdout = std::io::stdout();
    let mut failures = 0usize;
    for round in args.images.chunks(IMAGES_PER_ROUND) {
        let decoded: Vec<anyhow::Result<RgbImage>> = round
            .par_iter()
            .map(|path| images::load(path, &args.detect))
            .collect();
        let ok: Vec<&RgbImage> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let mut analysed = models.analyze_many(&ok, &options, stage)?.into_iter();
        let mut out = stdout.lock();
        for (path, image) in round.iter().zip(&decoded) {
            match image {
                Ok(image) => {
                    let faces = analysed.next().unwrap_or_default();
                    if args.json {
                        writeln!(out, "{}", json_line(&display(path), image, &faces))?;
                    } else {
                        write_text(&mut out, &display(path), image, &faces)?;
                    }
                }
                Err(err) => {
                    failures += 1;
                    progress.suspend(|| eprintln!("visage: error: {err:#}"));
                }
            }
            progress.inc(1);
        }
        out.flush()?;
    }
    progress.finish_and_clear();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress_bar(len: usize) -> ProgressBar {
    if len < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} images {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The JSON object of one image; fields a stage did not compute are left out.
pub fn json_line(file: &str, image: &RgbImage, faces: &[Face]) -> Value {
    let faces: Vec<Value> = faces.iter().map(face_json).collect();
    json!({ "file": file, "width": image.width(), "height": image.height(), "faces": faces })
}

fn face_json(face: &Face) -> Value {
    let r = &face.rect;
    let mut obj = json!({ "box": [r.left, r.top, r.right, r.bottom], "score": face.score });
    if !face.landmarks.is_empty() {
        obj["landmarks"] = face.landmarks.iter().map(|p| json!([p.x, p.y])).collect();
    }
    if let Some(encoding) = &face.encoding {
        obj["encoding"] = json!(encoding.to_vec());
    }
    obj
}

fn write_text(
    out: &mut impl Write,
    file: &str,
    image: &RgbImage,
    faces: &[Face],
) -> std::io::Result<()> {
    let plural = if faces.len() == 1 { "face" } else { "faces" };
    writeln!(
        out,
        "{file} ({}x{}): {} {plural}",
        image.width(),
        image.height(),
        faces.len()
    )?;
    for (i, face) in faces.iter().enumerate() {
        let r = &face.rect;
        writeln!(
            out,
            "  face {}: box [{}, {}, {}, {}] score {:.3}",
            i + 1,
            r.left,
            r.top,
            r.right,
            r.bottom,
            face.score
        )?;
        if !face.landmarks.is_empty() {
            let points: Vec<String> = face
                .landmarks
                .iter()
                .map(|p| format!("({}, {})", p.x, p.y))
                .collect();
            writeln!(out, "    landmarks {}", points.join(" "))?;
        }
        if let Some(encoding) = &face.encoding {
            let values: Vec<String> = encoding.iter().map(|v| format!("{v:.6}")).collect();
            writeln!(out, "    encoding {}", values.join(" "))?;
        }
    }
    Ok(())
}
