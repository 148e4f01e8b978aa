//! One module per subcommand.

mod bench;
mod calibrate;
mod classical;
mod demo;
mod device;
mod enroll;
mod eval;
mod faces;
mod fewshot;
mod gallery;
mod gallery_db;
mod identify;
mod inspect;
mod keys;
mod models;
mod serve;
mod style;
mod stylize;
mod train;
mod verify;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use visage_face::{DetectOptions, FaceModels};
use visage_formats::manifest::models_dir;
use visage_image::DecodeOptions;

use crate::args::{Cli, Command, DetectArgs, DeviceArg, ModelsDir};

/// Runs the parsed command; `Ok` carries the exit code for partial failures.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Detect(args) => faces::run(args, visage_face::Stage::Detect),
        Command::Landmarks(args) => faces::run(args, visage_face::Stage::Landmarks),
        Command::Encode(args) => faces::run(args, visage_face::Stage::Encode),
        Command::Verify(args) => verify::run(args),
        Command::Models(args) => models::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Enroll(args) => enroll::run(args),
        Command::Identify(args) => identify::run(args),
        Command::Gallery(args) => gallery::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Classical(args) => classical::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Train(args) => train::run(args),
        Command::Fewshot(args) => fewshot::run(args),
        Command::Style(args) => style::run(args),
        Command::Stylize(args) => stylize::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Device(args) => device::run(args),
    }
}

/// Loads the face models from the flag or `VISAGE_MODELS`.
fn load_models(dir: &ModelsDir) -> anyhow::Result<FaceModels> {
    let dir = models_dir(dir.models.as_deref())?;
    FaceModels::load(&dir)
        .with_context(|| format!("cannot load the face models from {}", dir.display()))
}

/// Loads the face models, with the encoder on the device asked for (`--device`).
fn load_models_on(dir: &ModelsDir, device: DeviceArg) -> anyhow::Result<FaceModels> {
    let mut models = load_models(dir)?;
    models
        .encode_on(device.device)
        .context("cannot run the face encoder there")?;
    Ok(models)
}

fn detect_options(args: &DetectArgs) -> DetectOptions {
    DetectOptions {
        upsample: args.upsample,
        adjust_threshold: args.adjust_threshold,
    }
}

/// How images are decoded for the face commands: the default, under `--max-pixels`.
fn decode_options(args: &DetectArgs) -> DecodeOptions {
    DecodeOptions {
        max_pixels: args.max_pixels,
        ..DecodeOptions::default()
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
