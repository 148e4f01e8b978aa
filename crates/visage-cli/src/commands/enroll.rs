//! `visage enroll NAME IMAGE...` and `visage enroll --from-dir DIR`: encodings into the gallery.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::json;
use visage_face::{largest_face, DetectOptions, FaceModels, Stage};
use visage_gallery::{EnrollMode, Gallery, NewTemplate};
use visage_image::RgbImage;

use super::gallery_db::{db_path, person_folders, progress_bar, sha256_file};
use super::{detect_options, display, load_models};
use crate::args::{DetectArgs, EnrollArgs};
use crate::images;

/// Photos decoded and analysed together: both cores busy, memory bounded.
const IMAGES_PER_ROUND: usize = 8;

pub fn run(args: EnrollArgs) -> anyhow::Result<ExitCode> {
    let path = db_path(&args.db)?;
    let models = load_models(&args.models)?;
    // An existing gallery is checked (file, schema, models) before any photo is processed; a
    // new one is only created once there is something to store.
    let gallery = if path.exists() {
        Some(Gallery::open(&path, models.manifest_id())?)
    } else {
        None
    };
    match &args.from_dir {
        Some(dir) => from_dir(&args, dir, &path, &models, gallery),
        None => one_person(&args, &path, &models, gallery),
    }
}

fn one_person(
    args: &EnrollArgs,
    path: &Path,
    models: &FaceModels,
    gallery: Option<Gallery>,
) -> anyhow::Result<ExitCode> {
    let name = args
        .name
        .as_deref()
        .ok_or_else(|| anyhow!("a NAME is required"))?;
    let mode = if args.append {
        EnrollMode::Append
    } else {
        EnrollMode::New
    };
    if let (Some(g), EnrollMode::New) = (&gallery, mode) {
        if g.contains(name)? {
            bail!("{name:?} is already enrolled; pass --append to add these photos to them, or choose another name");
        }
    }
    let bar = progress_bar(args.images.len(), "photos");
    let prepared = prepare(models, &args.images, &args.detect, args.largest, &bar);
    bar.finish_and_clear();
    let problems: Vec<&String> = prepared.iter().filter_map(|p| p.as_ref().err()).collect();
    if !problems.is_empty() {
        let list: Vec<&str> = problems.iter().map(|s| s.as_str()).collect();
        bail!(
            "nothing enrolled: {} of {} photos cannot be used: {}",
            problems.len(),
            prepared.len(),
            list.join("; ")
        );
    }
    let templates: Vec<NewTemplate> = prepared.into_iter().filter_map(Result::ok).collect();
    let mut gallery = match gallery {
        Some(g) => g,
        None => Gallery::open(path, models.manifest_id())?,
    };
    let done = gallery.enroll(name, &templates, mode)?;
    if args.json {
        println!(
            "{}",
            json!({ "name": name.trim(), "person_id": done.person_id, "created": done.created,
                    "templates_added": done.templates_added, "db": display(path) })
        );
    } else {
        let verb = if done.created { "enrolled" } else { "added to" };
        println!(
            "{verb} {} ({} templates) in {}",
            name.trim(),
            done.templates_added,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn from_dir(
    args: &EnrollArgs,
    dir: &Path,
    path: &Path,
    models: &FaceModels,
    gallery: Option<Gallery>,
) -> anyhow::Result<ExitCode> {
    let folders = person_folders(dir)?;
    let mut gallery = match gallery {
        Some(g) => g,
        None => Gallery::open(path, models.manifest_id())?,
    };
    let existing: HashSet<String> = gallery.people()?.into_iter().map(|p| p.name).collect();
    let (done, todo): (Vec<_>, Vec<_>) = folders
        .into_iter()
        .partition(|(n, _)| existing.contains(n.trim()));
    let bar = progress_bar(todo.iter().map(|(_, v)| v.len()).sum(), "photos");
    let (mut enrolled, mut templates, mut failed) = (0usize, 0usize, 0usize);
    let stdout = std::io::stdout();
    // People go through the pipeline a few at a time, but each is committed in a transaction of
    // its own, so a kill leaves whole people only and a repeated run resumes after them.
    let mut round: Vec<&(String, Vec<PathBuf>)> = Vec::new();
    let mut pending = todo.iter().peekable();
    while pending.peek().is_some() {
        round.clear();
        let mut photos = 0;
        while let Some(p) = pending.peek() {
            if !round.is_empty() && photos + p.1.len() > IMAGES_PER_ROUND {
                break;
            }
            photos += p.1.len();
            round.extend(pending.next());
        }
        let all: Vec<PathBuf> = round.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
        let mut prepared = prepare(models, &all, &args.detect, args.largest, &bar).into_iter();
        for (name, images) in &round {
            let results: Vec<Result<NewTemplate, String>> =
                prepared.by_ref().take(images.len()).collect();
            let skipped: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            let ok: Vec<NewTemplate> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect();
            for s in &skipped {
                bar.suspend(|| eprintln!("visage: warning: {name}: photo skipped: {s}"));
            }
            if ok.is_empty() {
                failed += 1;
                bar.suspend(|| eprintln!("visage: warning: {name}: not enrolled, no usable photo"));
                continue;
            }
            let result = gallery.enroll(name, &ok, EnrollMode::New)?;
            enrolled += 1;
            templates += result.templates_added;
            let mut out = stdout.lock();
            if args.json {
                writeln!(
                    out,
                    "{}",
                    json!({ "name": name.trim(), "person_id": result.person_id, "templates_added": result.templates_added, "photos_skipped": skipped.len() })
                )?;
            } else {
                writeln!(
                    out,
                    "enrolled {} ({} templates)",
                    name.trim(),
                    result.templates_added
                )?;
            }
            out.flush()?;
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "visage: {enrolled} people enrolled ({templates} templates) in {}; {} already enrolled; {failed} without a usable photo",
        path.display(),
        done.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One template per photo, or why the photo cannot be used (the message names the file).
fn prepare(
    models: &FaceModels,
    paths: &[PathBuf],
    detect: &DetectArgs,
    largest: bool,
    bar: &ProgressBar,
) -> Vec<Result<NewTemplate, String>> {
    let options: DetectOptions = detect_options(detect);
    let mut out = Vec::with_capacity(paths.len());
    for round in paths.chunks(IMAGES_PER_ROUND) {
        let decoded: Vec<anyhow::Result<(RgbImage, String)>> = round
            .par_iter()
            .map(|p| Ok((images::load(p, detect)?, sha256_file(p)?)))
            .collect();
        let ok: Vec<&RgbImage> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().map(|(i, _)| i))
            .collect();
        let analysed = match models.analyze_many(&ok, &options, Stage::Encode) {
            Ok(a) => a,
            Err(e) => {
                out.extend(round.iter().map(|p| Err(format!("{}: {e}", p.display()))));
                bar.inc(round.len() as u64);
                continue;
            }
        };
        let mut faces = analysed.into_iter();
        for (p, d) in round.iter().zip(decoded) {
            out.push(match d {
                Err(e) => Err(format!("{e:#}")),
                Ok((_, sha)) => {
                    let found = faces.next().unwrap_or_default();
                    match (found.len(), largest) {
                        (0, _) => Err(format!("{}: no face found", p.display())),
                        (n, false) if n > 1 => Err(format!(
                            "{}: {n} faces (pass --largest to take the largest)",
                            p.display()
                        )),
                        _ => match largest_face(&found)
                            .and_then(|f| f.encoding.map(|e| (f.rect, e)))
                        {
                            Some((r, encoding)) => Ok(NewTemplate {
                                encoding,
                                image_sha256: sha,
                                rect: [r.left, r.top, r.right, r.bottom],
                                source: Some(display(p)),
                            }),
                            None => Err(format!("{}: the face could not be encoded", p.display())),
                        },
                    }
                }
            });
        }
        bar.inc(round.len() as u64);
    }
    out
}
