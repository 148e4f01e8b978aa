//! `visage fewshot eval` and `visage fewshot build-runs`.

use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;
use visage_train::checkpoint;
use visage_train::data::alphabets;
use visage_train::fewshot::{build_runs, evaluate, read_runs, RunSpec, TestTimeAugmentation};

use crate::args::{FewshotArgs, FewshotBuildRunsArgs, FewshotCommand, FewshotEvalArgs};

pub fn run(args: FewshotArgs) -> anyhow::Result<ExitCode> {
    match args.which {
        FewshotCommand::Eval(a) => eval(a),
        FewshotCommand::BuildRuns(a) => build(a),
    }
}

fn eval(args: FewshotEvalArgs) -> anyhow::Result<ExitCode> {
    let augmentation = TestTimeAugmentation {
        shifts: args.shifts,
        symmetries: args.symmetries,
    };
    augmentation
        .validate()
        .with_context(|| format!("--shifts {} --symmetries {}", args.shifts, args.symmetries))?;
    let runs = read_runs(&args.runs)?;
    let (model, meta) = checkpoint::load(&args.model, &burn_device())
        .with_context(|| format!("cannot load the model {}", args.model.display()))?;
    let result = evaluate(&model, &meta.config, &runs, augmentation)?;
    if args.json {
        println!(
            "{}",
            json!({
                "runs": result.runs, "ways": result.ways, "items": result.items,
                "correct": result.correct, "accuracy": result.accuracy,
                "per_run": result.per_run, "scorer": result.scorer,
                "method": meta.config.method.name(), "train_steps": meta.step,
                "train_seconds": meta.train_seconds, "shifts": args.shifts,
                "symmetries": args.symmetries, "framing": meta.config.framing,
            })
        );
    } else {
        println!(
            "{}-way one-shot: {:.2}% ({} of {} items over {} runs; {} model, {} scorer)",
            result.ways,
            result.accuracy * 100.0,
            result.correct,
            result.items,
            result.runs,
            meta.config.method.name(),
            result.scorer
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
