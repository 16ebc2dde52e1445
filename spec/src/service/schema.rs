//! The JSON Schema of `services/*.toml` for editors (for example with taplo or the Even Better
//! TOML extension), generated from the raw types so that it cannot drift from the parser.
//! `docs/service.schema.json` is a committed copy; a test keeps the two equal.

use super::raw::RawService;

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://baton-os.github.io/baton/service.schema.json";

/// The JSON Schema of a service spec.
pub fn json_schema() -> serde_json::Value {
    crate::editor_schema::generate::<RawService>(SCHEMA_ID)
}

/// The schema as pretty-printed JSON with a final newline, as committed in
/// `docs/service.schema.json`.
pub fn json_schema_text() -> String {
    crate::editor_schema::text(&json_schema())
}
