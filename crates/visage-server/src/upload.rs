//! Reading multipart form bodies: image files (kept in memory only) and short text fields.

use std::collections::HashMap;

use axum::extract::multipart::{Multipart, MultipartRejection};

use crate::error::ApiError;

/// Longest text field accepted, in bytes.
const MAX_TEXT_BYTES: usize = 4096;

/// One uploaded file.
pub struct UploadedFile {
    /// The file name the client gave (or the field name), for messages.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A parsed form.
#[derive(Default)]
pub struct Form {
    /// Files by field name, in the order sent.
    pub files: HashMap<String, Vec<UploadedFile>>,
    /// Text fields (the last value wins).
    pub text: HashMap<String, String>,
}

impl Form {
    /// Reads the whole body; `file_fields` are the fields that carry images.
    pub async fn read(
        multipart: Result<Multipart, MultipartRejection>,
        file_fields: &[&str],
    ) -> Result<Self, ApiError> {
        let mut multipart = multipart.map_err(|e| {
            ApiError::bad_request(format!(
                "expected a multipart/form-data body: {}",
                e.body_text()
            ))
        })?;
        let mut form = Form::default();
        while let Some(field) = multipart.next_field().await? {
            let field_name = field.name().unwrap_or("").to_string();
            if file_fields.contains(&field_name.as_str()) {
                let name = field
                    .file_name()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&field_name)
                    .to_string();
                let bytes = field.bytes().await?.to_vec();
                form.files
                    .entry(field_name)
                    .or_default()
                    .push(UploadedFile { name, bytes });
            } else {
                let bytes = field.bytes().await?;
                if bytes.len() > MAX_TEXT_BYTES {
                    return Err(ApiError::bad_request(format!(
                        "the field {field_name:?} is over {MAX_TEXT_BYTES} bytes"
                    )));
                }
                let value = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("the field {field_name:?} is not UTF-8 text"))
                })?;
                form.text.insert(field_name, value);
            }
        }
        Ok(form)
    }

    /// The single file of `field` (400 when absent or repeated).
    pub fn one_file(&mut self, field: &str) -> Result<UploadedFile, ApiError> {
        match self.files.remove(field) {
            Some(mut v) if v.len() == 1 => Ok(v.remove(0)),
            Some(v) => Err(ApiError::bad_request(format!(
                "send one image in the field {field:?}, not {}",
                v.len()
            ))),
            None => Err(ApiError::bad_request(format!(
                "missing the image field {field:?}"
            ))),
        }
    }

    /// A yes/no text field (`true`/`false`/`1`/`0`, absent = no).
    pub fn flag(&self, field: &str) -> Result<bool, ApiError> {
        match self.text.get(field).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" || v == "1" || v == "on" || v == "yes" => Ok(true),
            Some(v) if v == "false" || v == "0" || v == "off" || v == "no" || v.is_empty() => {
                Ok(false)
            }
            Some(v) => Err(ApiError::bad_request(format!(
                "the field {field:?} must be true or false, got {v:?}"
            ))),
        }
    }

    /// A number field parsed as `T`, or `None` when absent or empty.
    pub fn number<T: std::str::FromStr>(&self, field: &str) -> Result<Option<T>, ApiError> {
        match self.text.get(field).map(|s| s.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("the field {field:?} is not a number: {v:?}"))
            }),
        }
    }
}
