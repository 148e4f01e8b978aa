//! The gallery of enrolled people for Visage's door: who is enrolled, their 128-d templates, the
//! models that made them (manifest id) and the decision threshold τ, in one SQLite file, with
//! exact and HNSW nearest-neighbour search. The same gallery can live on a PostgreSQL server
//! ([`postgres`]), shared by several service instances; [`GalleryDb`] opens either from a
//! location string, and [`keys`] holds the HTTP service's API keys (hashed) beside the people.
//!
//! Units: encodings are dlib's unitless 128-d vectors. τ and [`Candidate::distance`] are
//! **Euclidean** distances (face_recognition's tolerance 0.6 is one); the search internals
//! ([`search`], [`hnsw`]) rank by **squared** Euclidean distance and say so.
//!
//! Where things are: the SQLite schema and every query in [`store`]; the exact scan in
//! [`search`]; the graph in [`hnsw`].

mod db;
mod error;
pub mod hnsw;
pub mod keys;
pub mod postgres;
pub mod search;
pub mod store;

pub use db::GalleryDb;
pub use keys::{ApiKey, IssuedKey, Scope};
pub use postgres::{is_postgres_url, PgGallery};

pub use error::GalleryError;
pub use search::{squared_distance, Encoding, Neighbor, TemplateMatrix, DIM};
pub use store::{
    Candidate, EnrollMode, Enrolled, ExportPerson, Gallery, GalleryExport, IndexKind, NewTemplate,
    Person, Searcher, Template, DEFAULT_THRESHOLD, HNSW_MIN_TEMPLATES,
};
