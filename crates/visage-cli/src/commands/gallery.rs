//! `visage gallery list|show|rename|remove|export|import`.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use visage_gallery::{Gallery, GalleryExport};

use super::gallery_db::{db_path, json_f32};
use crate::args::{GalleryAction, GalleryArgs};

pub fn run(args: GalleryArgs) -> anyhow::Result<ExitCode> {
    let path = db_path(&args.db)?;
    if let GalleryAction::Import { file } = &args.action {
        let text = if file.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read standard input")?;
            s
        } else {
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?
        };
        let export: GalleryExport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a gallery export", file.display()))?;
        // A missing gallery is created for the export's models; an existing one must match them.
        let mut gallery = Gallery::open(&path, &export.manifest_id)?;
        let n = gallery.import(&export)?;
        if args.json {
            println!(
                "{}",
                json!({ "imported": n, "db": path.display().to_string() })
            );
        } else {
            println!("imported {n} people into {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut gallery = Gallery::open_existing(&path)?;
    match &args.action {
        GalleryAction::List => {
            let people = gallery.people()?;
            let threshold = gallery.threshold()?;
            if args.json {
                let line = json!({
                    "db": path.display().to_string(), "manifest_id": gallery.manifest_id(),
                    "threshold": json_f32(threshold), "people": people,
                });
                println!("{line}");
            } else {
                let templates: usize = people.iter().map(|p| p.templates).sum();
                println!(
                    "{}: {} people, {templates} templates; models {}; τ {threshold} (Euclidean)",
                    path.display(),
                    people.len(),
                    gallery.manifest_id()
                );
                for p in &people {
                    println!(
                        "  {}  ({} templates, enrolled {})",
                        p.name,
                        p.templates,
                        utc(p.created_at)
                    );
                }
            }
        }
        GalleryAction::Show { name } => {
            let (person, templates) = gallery.person(name)?;
            if args.json {
                let t: Vec<_> = templates
                    .iter()
                    .map(|t| json!({ "id": t.id, "image_sha256": t.image_sha256, "box": t.rect, "source": t.source, "created_at": t.created_at }))
                    .collect();
                println!(
                    "{}",
                    json!({ "id": person.id, "name": person.name, "created_at": person.created_at, "templates": t })
                );
            } else {
                println!(
                    "{} (enrolled {}): {} templates",
                    person.name,
                    utc(person.created_at),
                    templates.len()
                );
                for t in &templates {
                    let [l, tp, r, b] = t.rect;
                    println!(
                        "  #{} box [{l}, {tp}, {r}, {b}] sha256 {} {} ({})",
                        t.id,
                        &t.image_sha256,
                        t.source.as_deref().unwrap_or("-"),
                        utc(t.created_at)
                    );
                }
            }
        }
        GalleryAction::Rename { old, new } => {
            gallery.rename(old, new)?;
            println!("renamed {old} to {}", new.trim());
        }
        GalleryAction::Remove { name } => {
            let n = gallery.remove(name)?;
            println!("removed {name} ({n} templates)");
        }
        GalleryAction::Export { file } => {
            let export = gallery.export()?;
            let text = serde_json::to_string(&export)?;
            if file.as_os_str() == "-" {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}")?;
            } else {
                // Written beside the target and renamed, so a failed export never leaves half a file.
                let tmp = file.with_extension("partial");
                std::fs::write(&tmp, text.as_bytes())
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, file)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                eprintln!(
                    "exported {} people to {}",
                    export.people.len(),
                    file.display()
                );
            }
        }
        GalleryAction::Import { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (civil-from-days, no date crate needed).
fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_709_210_096), "2024-02-29 12:34:56 UTC");
    }
}
