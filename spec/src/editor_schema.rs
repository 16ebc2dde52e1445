//! JSON Schemas for editors, generated from the raw types so that they cannot drift from the
//! parsers (see `service::schema` and `board_config::schema`).

/// The JSON Schema of `T`, with `$id` set to `id`.
pub(crate) fn generate<T: schemars::JsonSchema>(id: &str) -> serde_json::Value {
    let mut schema = schemars::schema_for!(T);
    schema.insert("$id".to_string(), id.into());
    schema.to_value()
}

/// `schema` as pretty-printed JSON with a final newline, as the committed copies are.
pub(crate) fn text(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}
