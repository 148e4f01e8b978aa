//! `visage serve`: the HTTP service and web page over a gallery in SQLite or PostgreSQL.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use visage_gallery::{GalleryDb, IndexKind};
use visage_server::{AppState, ServerConfig};

use super::gallery_db::db_location;
use super::{detect_options, load_models};
use crate::args::{IndexChoice, ServeArgs};

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let location = db_location(args.db.as_deref())?;
    let defaults = ServerConfig::default();
    let workers = args.workers.unwrap_or(defaults.workers);
    if args.max_body_mb == 0 || args.timeout_s == 0 {
        bail!("--max-body-mb and --timeout-s must be at least 1");
    }
    if let Some(dir) = &args.keep_images {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --keep-images folder {}", dir.display()))?;
    }
    let config = ServerConfig {
        workers,
        queue: args.queue.unwrap_or(2 * workers),
        max_body_bytes: args.max_body_mb * 1024 * 1024,
        max_pixels: args.detect.max_pixels,
        request_timeout: Duration::from_secs(args.timeout_s),
        keep_images: args.keep_images.clone(),
        max_enroll_images: defaults.max_enroll_images,
        detect: detect_options(&args.detect),
        index: match args.index {
            IndexChoice::Auto => IndexKind::Auto,
            IndexChoice::Exact => IndexKind::Exact,
            IndexChoice::Hnsw => IndexKind::Hnsw,
        },
        verify_threshold: defaults.verify_threshold,
    };
    let models = load_models(&args.models)?;
    let gallery = GalleryDb::open(&location, models.manifest_id())?;
    let shown = gallery.location();
    let live_keys = gallery
        .keys()?
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    let (workers, queue) = (config.workers, config.queue);
    let state = AppState::new(Arc::new(models), gallery, config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "visage: serving the gallery {shown} on http://{addr}/ (API under /api/v1, \
             {workers} inference threads, {queue} may wait)"
        );
        if live_keys == 0 {
            eprintln!(
                "visage: warning: no API key yet; make one with \
                 visage keys create --name admin --scope identify --scope manage --db ..."
            );
        }
        visage_server::serve(listener, state, shutdown_signal())
            .await
            .context("the service stopped")
    })?;
    eprintln!("visage: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM from a service manager: requests in flight are finished first.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
