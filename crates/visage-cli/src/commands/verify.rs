//! `visage verify A B`: the distance between the largest faces of two images, and the decision.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use serde_json::json;
use visage_face::{distance, largest_face, Stage};

use super::{detect_options, display, load_models};
use crate::args::VerifyArgs;
use crate::images;

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        bail!(
            "--threshold must be a finite distance ≥ 0, got {}",
            args.threshold
        );
    }
    let models = load_models(&args.models)?;
    let options = detect_options(&args.detect);
    let a = images::load(&args.a, &args.detect)?;
    let b = images::load(&args.b, &args.detect)?;
    let faces = models.analyze_many(&[&a, &b], &options, Stage::Encode)?;
    let pick = |i: usize, path: &std::path::Path| {
        largest_face(&faces[i])
            .and_then(|f| f.encoding)
            .ok_or_else(|| anyhow!("{}: no face found", path.display()))
    };
    let (ea, eb) = (pick(0, &args.a)?, pick(1, &args.b)?);
    let d = distance(&ea, &eb);
    let same = d <= args.threshold;
    if args.json {
        let line = json!({
            "a": display(&args.a), "b": display(&args.b),
            "faces_a": faces[0].len(), "faces_b": faces[1].len(),
            "distance": d, "threshold": args.threshold, "same_person": same,
        });
        println!("{line}");
    } else if same {
        println!(
            "same person: distance {d:.4} <= threshold {:.4}",
            args.threshold
        );
    } else {
        println!(
            "different people: distance {d:.4} > threshold {:.4}",
            args.threshold
        );
    }
    Ok(ExitCode::SUCCESS)
}
