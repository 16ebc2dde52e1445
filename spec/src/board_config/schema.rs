//! The JSON Schema of `cluster.toml` for editors, generated from the raw types so that it cannot
//! drift from the parser. `docs/cluster.schema.json` is a committed copy; a test keeps the two
//! equal.

use super::raw::RawClusterFile;

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://baton-os.github.io/baton/cluster.schema.json";

/// The JSON Schema of `cluster.toml`.
pub fn json_schema() -> serde_json::Value {
    crate::editor_schema::generate::<RawClusterFile>(SCHEMA_ID)
}

/// The schema as pretty-printed JSON with a final newline, as committed in
/// `docs/cluster.schema.json`.
pub fn json_schema_text() -> String {
    crate::editor_schema::text(&json_schema())
}
