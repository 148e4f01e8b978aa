//! `visage fewshot eval` and `visage fewshot build-runs`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;
use visage_train::checkpoint;
use visage_train::data::alphabets;
use visage_train::fewshot::{
    build_runs, evaluate, fit_whitening, read_runs, Crowding, Member, Mistake, RunSpec,
    TestTimeAugmentation,
};

use crate::args::{FewshotArgs, FewshotBuildRunsArgs, FewshotCommand, FewshotEvalArgs};

pub fn run(args: FewshotArgs) -> anyhow::Result<ExitCode> {
    match args.which {
        FewshotCommand::Eval(a) => eval(a),
        FewshotCommand::BuildRuns(a) => build(a),
    }
}

/// Writes `mistakes` to `file` as tab-separated lines under a header, paths relative to `runs`.
fn write_mistakes(file: &Path, runs: &Path, mistakes: &[Mistake]) -> anyhow::Result<()> {
    let relative = |p: &Path| p.strip_prefix(runs).unwrap_or(p).display().to_string();
    let mut text = String::from("run\titem\ttruth\tchosen\n");
    for m in mistakes {
        text += &format!(
            "{}\t{}\t{}\t{}\n",
            m.run,
            relative(&m.item),
            relative(&m.truth),
            relative(&m.chosen)
        );
    }
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))
}

fn eval(args: FewshotEvalArgs) -> anyhow::Result<ExitCode> {
    let augmentation = TestTimeAugmentation {
        shifts: args.shifts,
        symmetries: args.symmetries,
    };
    augmentation
        .validate()
        .with_context(|| format!("--shifts {} --symmetries {}", args.shifts, args.symmetries))?;
    let crowding = Crowding {
        neighbours: args.crowding_neighbours,
        power: args.crowding_power,
    };
    crowding.validate().with_context(|| {
        format!(
            "--crowding-neighbours {} --crowding-power {}",
            args.crowding_neighbours, args.crowding_power
        )
    })?;
    let runs = read_runs(&args.runs)?;
    let loaded = args
        .model
        .iter()
        .map(|path| {
            checkpoint::load(path, &burn_device())
                .with_context(|| format!("cannot load the model {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plain_members: Vec<Member> = loaded
        .iter()
        .map(|(model, meta)| Member {
            model,
            config: &meta.config,
            whitening: None,
        })
        .collect();
    let whitenings = match &args.whiten_from {
        Some(dir) => plain_members
            .iter()
            .zip(&args.model)
            .map(|(m, path)| {
                fit_whitening(m, dir, augmentation, args.whiten_shrinkage)
                    .map(Some)
                    .with_context(|| {
                        format!(
                            "cannot fit the whitening of {} on {}",
                            path.display(),
                            dir.display()
                        )
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => vec![None; plain_members.len()],
    };
    let members: Vec<Member> = plain_members
        .iter()
        .zip(&whitenings)
        .map(|(m, w)| Member {
            whitening: w.as_ref(),
            ..*m
        })
        .collect();
    let result = evaluate(&members, &runs, augmentation, crowding)?;
    if let Some(file) = &args.mistakes {
        write_mistakes(file, &args.runs, &result.mistakes)?;
    }
    let methods: Vec<&str> = loaded.iter().map(|(_, m)| m.config.method.name()).collect();
    // The set the first model's whitening was fitted on, and that whitening.
    let whitened_by = args
        .whiten_from
        .as_ref()
        .zip(whitenings.first().and_then(Option::as_ref));
    if args.json {
        let described: Vec<_> = args
            .model
            .iter()
            .zip(&loaded)
            .map(|(path, (_, meta))| {
                json!({
                    "model": path, "method": meta.config.method.name(), "train_steps": meta.step,
                    "train_seconds": meta.train_seconds, "framing": meta.config.framing,
                })
            })
            .collect();
        // Classes (characters under each symmetry) and embeddings the first model's whitening
        // was fitted on; every model's are fitted alike.
        let whitening_json = match whitened_by {
            Some((dir, w)) => json!({
                "from": dir, "shrinkage": args.whiten_shrinkage,
                "classes": w.groups, "embeddings": w.samples,
            }),
            None => serde_json::Value::Null,
        };
        let mut out = json!({
            "runs": result.runs, "ways": result.ways, "items": result.items,
            "correct": result.correct, "accuracy": result.accuracy,
            "per_run": result.per_run, "scorer": result.scorer,
            "shifts": args.shifts, "symmetries": args.symmetries, "models": described,
            "crowding": result.crowding,
            "whitening": whitening_json,
            "correct_without_crowding": result.correct_without_crowding,
            "accuracy_without_crowding": result.accuracy_without_crowding,
            "distinct_images": result.distinct_images,
        });
        // One model: its description at the top level too, as before ensembles.
        if let ([only], Some(object)) = (&described[..], out.as_object_mut()) {
            for key in ["method", "train_steps", "train_seconds", "framing"] {
                object.insert(key.into(), only[key].clone());
            }
        }
        println!("{out}");
    } else {
        let crowding_note = if crowding.is_on() && result.scorer.contains("distance") {
            format!(
                "; crowding scaling over {} neighbours to the power {}, {:.2}% without",
                crowding.neighbours,
                crowding.power,
                result.accuracy_without_crowding * 100.0
            )
        } else {
            String::new()
        };
        let whitening_note = match whitened_by {
            Some((dir, w)) => format!(
                "; whitened by the scatter of {} classes (characters under each symmetry) in {} (shrinkage {})",
                w.groups,
                dir.display(),
                args.whiten_shrinkage
            ),
            None => String::new(),
        };
        println!(
            "{}-way one-shot: {:.2}% ({} of {} items over {} runs, {} distinct images; {} {}, {} scorer{}{})",
            result.ways,
            result.accuracy * 100.0,
            result.correct,
            result.items,
            result.runs,
            result.distinct_images,
            methods.join("+"),
            if methods.len() == 1 {
                "model"
            } else {
                "models"
            },
            result.scorer,
            whitening_note,
            crowding_note
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn burn_device() -> visage_train::checkpoint::PlainDevice {
    visage_train::checkpoint::plain_device()
}

fn build(args: FewshotBuildRunsArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 || args.ways < 2 {
        bail!("--runs must be at least 1 and --ways at least 2");
    }
    if args.out.join("run01").exists() {
        bail!("{} already holds runs", args.out.display());
    }
    let exclude = match &args.exclude_alphabets_of {
        Some(dir) => alphabets(dir)?,
        None => Vec::new(),
    };
    let used = build_runs(
        &args.from,
        &args.out,
        &RunSpec {
            runs: args.runs,
            ways: args.ways,
            exclude_alphabets: exclude.clone(),
            across_alphabets: args.across_alphabets,
            seed: args.seed,
        },
    )?;
    println!(
        "{} runs of {}-way one-shot ({}) in {} from {} (left out: {})",
        args.runs,
        args.ways,
        if args.across_alphabets {
            "characters drawn across alphabets"
        } else {
            "each run within one alphabet"
        },
        args.out.display(),
        used.join(", "),
        if exclude.is_empty() {
            "none".to_string()
        } else {
            exclude.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
