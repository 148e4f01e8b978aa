//! The JSON API under `/api/v1`: verify, identify, enroll, and people (list, show, rename,
//! remove); answers and errors as `visage verify`, `identify`, `enroll` and `gallery` give them.

use std::path::Path;
use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use visage_face::{distance, largest_face, Face, Stage};
use visage_gallery::{Candidate, EnrollMode, NewTemplate, Scope};
use visage_image::{decode_bytes, DecodeOptions, RgbImage};

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upload::{Form, UploadedFile};

type Shared = State<Arc<AppState>>;

/// Runs `work` on the inference pool: 429 when its queue is full.
async fn on_pool<T, F>(state: &Arc<AppState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
{
    let shared = Arc::clone(state);
    let answer = state
        .pool
        .try_run(move || work(&shared))
        .map_err(|_| ApiError::busy())?;
    answer
        .await
        .map_err(|_| ApiError::internal("an inference thread failed"))?
}

/// Runs a short gallery call off the async threads.
async fn blocking<T, F>(state: &Arc<AppState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
{
    let shared = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .map_err(|e| ApiError::internal(format!("a gallery call failed: {e}")))?
}

fn decode(state: &AppState, file: &UploadedFile) -> Result<RgbImage, ApiError> {
    let options = DecodeOptions {
        max_pixels: state.config.max_pixels,
        ..DecodeOptions::default()
    };
    Ok(decode_bytes(&file.bytes, Path::new(&file.name), &options)?)
}

fn analyze(state: &AppState, images: &[&RgbImage]) -> Result<Vec<Vec<Face>>, ApiError> {
    state
        .models
        .analyze_many(images, &state.config.detect, Stage::Encode)
        .map_err(|e| ApiError::internal(format!("face analysis failed: {e}")))
}

fn rect(f: &Face) -> [i64; 4] {
    [f.rect.left, f.rect.top, f.rect.right, f.rect.bottom]
}

/// An `f32` as the JSON number with the same decimal digits (0.6, not 0.6000000238418579).
fn json_f32(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `POST /api/v1/verify`: fields `a` and `b` (images), optional `threshold` (Euclidean, default
/// 0.6). The largest face of each is compared.
pub async fn verify(
    State(state): Shared,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    // The body is read before the key is checked: a client still sending when refused would
    // see a broken connection instead of the 401.
    let form = Form::read(multipart, &["a", "b"]).await;
    require(&state, &headers, Scope::Identify).await?;
    let mut form = form?;
    let threshold = form
        .number::<f32>("threshold")?
        .unwrap_or(state.config.verify_threshold);
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(ApiError::bad_request(format!(
            "threshold must be a finite distance ≥ 0, got {threshold}"
        )));
    }
    let (a, b) = (form.one_file("a")?, form.one_file("b")?);
    on_pool(&state, move |state| {
        let (ia, ib) = (decode(state, &a)?, decode(state, &b)?);
        let faces = analyze(state, &[&ia, &ib])?;
        let pick = |i: usize, name: &str| {
            largest_face(&faces[i])
                .and_then(|f| f.encoding.map(|e| (rect(f), e)))
                .ok_or_else(|| ApiError::unusable(format!("{name}: no face found")))
        };
        let ((box_a, ea), (box_b, eb)) = (pick(0, &a.name)?, pick(1, &b.name)?);
        let d = distance(&ea, &eb);
        Ok(Json(json!({
            "distance": d, "threshold": json_f32(threshold), "same_person": d <= threshold,
            "faces_a": faces[0].len(), "faces_b": faces[1].len(),
            "box_a": box_a, "box_b": box_b,
        })))
    })
    .await
}

fn recognized(candidates: &[Candidate], threshold: f32) -> Option<&Candidate> {
    candidates.first().filter(|c| c.distance <= threshold)
}

/// `POST /api/v1/identify`: field `image`; optional `top` (1 to 100 candidates per face,
/// default 1) and `threshold` (default: the gallery's τ). Every face is named or "not
/// recognized" (`name: null`).
pub async fn identify(
    State(state): Shared,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    // The body is read before the key is checked: a client still sending when refused would
    // see a broken connection instead of the 401.
    let form = Form::read(multipart, &["image"]).await;
    require(&state, &headers, Scope::Identify).await?;
    let mut form = form?;
    let top = form.number::<usize>("top")?.unwrap_or(1);
    if !(1..=100).contains(&top) {
        return Err(ApiError::bad_request(format!(
            "top must be 1 to 100, got {top}"
        )));
    }
    let threshold = form.number::<f32>("threshold")?;
    if let Some(t) = threshold.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(ApiError::bad_request(format!(
            "threshold must be a finite Euclidean distance > 0, got {t}"
        )));
    }
    let image = form.one_file("image")?;
    on_pool(&state, move |state| {
        let decoded = decode(state, &image)?;
        let faces = analyze(state, &[&decoded])?.pop().unwrap_or_default();
        // Read after the inference, so an enrolment that finished meanwhile is seen.
        let index = state.snapshot()?;
        if index.searcher.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "empty_gallery",
                "the gallery is empty: enroll people first",
            ));
        }
        let threshold = threshold.unwrap_or(index.threshold);
        let faces: Vec<Value> = faces
            .iter()
            .map(|f| {
                let c = f
                    .encoding
                    .map(|e| index.searcher.identify(&e, top))
                    .unwrap_or_default();
                let hit = recognized(&c, threshold);
                json!({
                    "box": rect(f),
                    "name": hit.map(|c| c.name.clone()),
                    "recognized": hit.is_some(),
                    "candidates": c.iter().map(|c| json!({ "name": c.name, "distance": json_f32(c.distance) })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(Json(json!({
            "file": image.name, "width": decoded.width(), "height": decoded.height(),
            "threshold": json_f32(threshold), "faces": faces,
        })))
    })
    .await
}

/// `POST /api/v1/people`: field `name`, one or more `image` fields (each one face, or the
/// largest with `largest=true`), optional `append=true` to add to an enrolled person. All
/// photos are stored in one transaction, or none.
pub async fn enroll(
    State(state): Shared,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    // The body is read before the key is checked: a client still sending when refused would
    // see a broken connection instead of the 401.
    let form = Form::read(multipart, &["image"]).await;
    require(&state, &headers, Scope::Manage).await?;
    let mut form = form?;
    let name = form
        .text
        .get("name")
        .map(|s| s.trim().to_string())
        .ok_or_else(|| ApiError::bad_request("missing the field \"name\""))?;
    let mode = if form.flag("append")? {
        EnrollMode::Append
    } else {
        EnrollMode::New
    };
    let largest = form.flag("largest")?;
    let images = form.files.remove("image").unwrap_or_default();
    if images.is_empty() {
        return Err(ApiError::bad_request(
            "send at least one photo in the field \"image\"",
        ));
    }
    if images.len() > state.config.max_enroll_images {
        return Err(ApiError::bad_request(format!(
            "at most {} photos per enrolment",
            state.config.max_enroll_images
        )));
    }
    if mode == EnrollMode::New {
        let probe = name.clone();
        if blocking(&state, move |s| Ok(s.gallery().contains(&probe)?)).await? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{name:?} is already enrolled; send append=true to add these photos to them, or choose another name"),
            ));
        }
    }
    let done = on_pool(&state, move |state| {
        let decoded: Vec<RgbImage> = images
            .iter()
            .map(|f| decode(state, f))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&RgbImage> = decoded.iter().collect();
        let analysed = analyze(state, &refs)?;
        let mut templates = Vec::new();
        let mut problems = Vec::new();
        for (file, faces) in images.iter().zip(&analysed) {
            match (faces.len(), largest) {
                (0, _) => problems.push(format!("{}: no face found", file.name)),
                (n, false) if n > 1 => problems.push(format!(
                    "{}: {n} faces (send largest=true to take the largest)",
                    file.name
                )),
                _ => match largest_face(faces).and_then(|f| f.encoding.map(|e| (rect(f), e))) {
                    Some((rect, encoding)) => templates.push(NewTemplate {
                        encoding,
                        image_sha256: sha256_hex(&file.bytes),
                        rect,
                        source: Some(file.name.clone()),
                    }),
                    None => problems.push(format!("{}: the face could not be encoded", file.name)),
                },
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::unusable(format!(
                "nothing enrolled: {} of {} photos cannot be used: {}",
                problems.len(),
                images.len(),
                problems.join("; ")
            )));
        }
        if let Some(dir) = &state.config.keep_images {
            for (file, t) in images.iter().zip(&templates) {
                std::fs::write(dir.join(&t.image_sha256), &file.bytes).map_err(|e| {
                    ApiError::internal(format!("cannot keep the photo in {}: {e}", dir.display()))
                })?;
            }
        }
        Ok(state
            .gallery()
            .enroll(&name, &templates, mode)
            .map(|d| (name, d))?)
    })
    .await?;
    let (name, done) = done;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(
            json!({ "name": name, "person_id": done.person_id, "created": done.created,
                     "templates_added": done.templates_added }),
        ),
    )
        .into_response())
}

/// `GET /api/v1/people`: everyone, by name, with the gallery's τ.
pub async fn list_people(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Manage).await?;
    blocking(&state, |s| {
        let g = s.gallery();
        Ok(Json(json!({
            "threshold": json_f32(g.threshold()?),
            "manifest_id": g.manifest_id(),
            "people": g.people()?,
        })))
    })
    .await
}

/// `GET /api/v1/people/{name}`: one person and their templates (without encodings).
pub async fn show_person(
    State(state): Shared,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Manage).await?;
    blocking(&state, move |s| {
        let (person, templates) = s.gallery().person(&name)?;
        let templates: Vec<Value> = templates
            .iter()
            .map(|t| {
                json!({ "id": t.id, "image_sha256": t.image_sha256, "box": t.rect,
                             "source": t.source, "created_at": t.created_at })
            })
            .collect();
        Ok(Json(
            json!({ "id": person.id, "name": person.name, "created_at": person.created_at,
                         "templates": templates }),
        ))
    })
    .await
}

/// Body of a rename.
#[derive(Debug, Deserialize)]
pub struct Rename {
    /// The new name.
    pub name: String,
}

/// `PATCH /api/v1/people/{name}` with `{"name": "new name"}`.
pub async fn rename_person(
    State(state): Shared,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<Rename>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Manage).await?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON body {{\"name\": \"...\"}}: {}",
            e.body_text()
        ))
    })?;
    blocking(&state, move |s| {
        s.gallery().rename(&name, &body.name)?;
        Ok(Json(
            json!({ "renamed": name.trim(), "name": body.name.trim() }),
        ))
    })
    .await
}

/// `DELETE /api/v1/people/{name}`: the person and their templates.
pub async fn remove_person(
    State(state): Shared,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Manage).await?;
    blocking(&state, move |s| {
        let templates = s.gallery().remove(&name)?;
        Ok(Json(
            json!({ "removed": name.trim(), "templates_removed": templates }),
        ))
    })
    .await
}

/// `GET /api/v1/health`: whether the gallery answers, and how big it is (no key needed).
pub async fn health(State(state): Shared) -> Response {
    let answer = blocking(&state, |s| {
        let index = s.snapshot()?;
        let g = s.gallery();
        Ok(json!({
            "status": "ok", "gallery": s.backend(), "people": g.people()?.len(),
            "templates": index.searcher.len(), "generation": index.generation,
            "inference_pending": s.pool.pending(),
        }))
    })
    .await;
    match answer {
        Ok(v) => Json(v).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": { "code": e.code, "message": e.message } })),
        )
            .into_response(),
    }
}
