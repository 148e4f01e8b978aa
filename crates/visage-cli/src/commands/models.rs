//! `visage models` and `visage models fetch`.

use std::process::ExitCode;

use visage_formats::manifest::{models_dir, Manifest, ModelState};

use crate::args::{ModelSet, ModelsAction, ModelsArgs};

pub fn run(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    let dir = models_dir(args.models.models.as_deref())?;
    let manifest = match args.set {
        ModelSet::Faces => Manifest::builtin(),
        ModelSet::FastStyle => Manifest::fast_style(),
    };
    if let Some(ModelsAction::Fetch { from }) = &args.action {
        for line in manifest.fetch(&dir, from.as_deref())? {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let statuses = manifest.check(&dir);
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "manifest": manifest.id, "dir": dir, "models": statuses })
        );
    } else {
        println!(
            "models directory {} (manifest {})",
            dir.display(),
            manifest.id
        );
        for status in &statuses {
            println!("  {} [{}]", status.describe(), status.entry.license);
        }
    }
    let all_ok = statuses.iter().all(|s| s.state == ModelState::Ok);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
