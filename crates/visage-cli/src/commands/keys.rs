//! `visage keys create|list|revoke`: the service's API keys, stored hashed in the gallery.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;
use visage_gallery::{GalleryDb, GalleryError, Scope};

use super::gallery_db::db_location;
use super::load_models;
use crate::args::{KeysAction, KeysArgs, ScopeChoice};

pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let location = db_location(args.db.as_deref())?;
    match &args.action {
        KeysAction::Create { name, scope } => {
            // A new deployment may make its first key before anyone is enrolled: the gallery
            // is then created for the installed models.
            let mut gallery = match GalleryDb::open_existing(&location) {
                Err(GalleryError::NotFound { .. }) => {
                    let models = load_models(&args.models)?;
                    GalleryDb::open(&location, models.manifest_id())?
                }
                other => other?,
            };
            let scopes: Vec<Scope> = if scope.is_empty() {
                vec![Scope::Identify]
            } else {
                scope
                    .iter()
                    .map(|s| match s {
                        ScopeChoice::Identify => Scope::Identify,
                        ScopeChoice::Manage => Scope::Manage,
                    })
                    .collect()
            };
            let issued = gallery.create_key(name, &scopes)?;
            if args.json {
                println!("{}", serde_json::to_string(&issued)?);
            } else {
                let scopes: Vec<&str> = issued.key.scopes.iter().map(|s| s.as_str()).collect();
                eprintln!(
                    "visage: key {} ({}) for {}: shown once, only its hash is stored",
                    issued.key.id,
                    scopes.join(", "),
                    issued.key.name
                );
                println!("{}", issued.secret);
            }
        }
        KeysAction::List => {
            let gallery = GalleryDb::open_existing(&location)?;
            let keys = gallery.keys()?;
            if args.json {
                println!("{}", json!({ "keys": keys }));
            } else if keys.is_empty() {
                println!("no API keys (visage keys create --name NAME makes one)");
            } else {
                for k in keys {
                    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                    let state = match k.revoked_at {
                        Some(t) => format!("revoked at {t}"),
                        None => "live".to_string(),
                    };
                    println!(
                        "{:>4}  {:<24} {:<16} created {}  {state}",
                        k.id,
                        k.name,
                        scopes.join(","),
                        k.created_at
                    );
                }
            }
        }
        KeysAction::Revoke { id } => {
            if *id <= 0 {
                bail!("a key id is a positive number (visage keys list shows them)");
            }
            let mut gallery = GalleryDb::open_existing(&location)?;
            gallery.revoke_key(*id)?;
            if args.json {
                println!("{}", json!({ "revoked": id }));
            } else {
                println!("revoked key {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
