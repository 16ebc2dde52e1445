//! From text to the raw type, collecting one error per faulty top-level key instead of stopping
//! at the first, each with its line and dotted field path.

use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};
use toml::Spanned;

use super::raw::RawService;
use crate::error::ConfigError;
use crate::locate::{self, SpanIndex};

/// Parses `src` into the raw type and an index of where every field is.
pub(crate) fn parse_raw(
    file: &str,
    src: &str,
) -> Result<(RawService, SpanIndex), Vec<ConfigError>> {
    let root = DeTable::parse(src).map_err(|e| vec![syntax_error(file, src, &e)])?;
    let index = SpanIndex::new(src, root.get_ref());
    // Each leaf key alone, so that a type error or unknown key in one does not hide the others:
    // `{resources = {cpu = …}}`, then `{resources = {memory = …}}`, and so on. Every field of the
    // raw types is optional, so a document reduced to one key deserialises unless that key is
    // at fault; spans still point into `src`, so errors keep their real line and path.
    let mut errors: Vec<ConfigError> = Vec::new();
    for (key, value) in root.get_ref().iter() {
        for piece in pieces(value) {
            let mut single = DeTable::new();
            single.insert(key.clone(), piece);
            let de = Deserializer::from(Spanned::new(root.span(), single));
            if let Err(e) = RawService::deserialize(de) {
                let e = serde_error(file, &index, &e, key.get_ref());
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let raw = RawService::deserialize(Deserializer::from(root))
        .map_err(|e| vec![serde_error(file, &index, &e, "")])?;
    Ok((raw, index))
}

/// A value split into parts that each hold one key: a table into one-entry tables, an array of
/// tables into one-element arrays of one-entry tables; anything else stays whole.
fn pieces<'i>(value: &Spanned<DeValue<'i>>) -> Vec<Spanned<DeValue<'i>>> {
    let one_entry_tables = |table: &DeTable<'i>, span: std::ops::Range<usize>| {
        table
            .iter()
            .map(|(k, v)| {
                let mut t = DeTable::new();
                t.insert(k.clone(), v.clone());
                Spanned::new(span.clone(), DeValue::Table(t))
            })
            .collect::<Vec<_>>()
    };
    match value.get_ref() {
        DeValue::Table(t) if !t.is_empty() => one_entry_tables(t, value.span()),
        DeValue::Array(a) if !a.is_empty() && a.iter().all(|e| e.get_ref().is_table()) => a
            .iter()
            .flat_map(|element| match element.get_ref() {
                DeValue::Table(t) if !t.is_empty() => one_entry_tables(t, element.span()),
                _ => vec![element.clone()],
            })
            .map(|part| {
                let mut array = DeArray::new();
                array.push(part);
                Spanned::new(value.span(), DeValue::Array(array))
            })
            .collect(),
        _ => vec![value.clone()],
    }
}

fn serde_error(file: &str, index: &SpanIndex, e: &toml::de::Error, fallback: &str) -> ConfigError {
    let (line, field) = match e.span() {
        Some(span) => (
            index.line_of_offset(span.start),
            index.path_at(span.start).unwrap_or(fallback).to_string(),
        ),
        None => (index.line_of(fallback), fallback.to_string()),
    };
    ConfigError {
        file: file.to_string(),
        line: Some(line),
        field,
        message: plain_words(&first_line(e.message())),
    }
}

/// serde names Rust types in its messages; say TOML types instead.
fn plain_words(message: &str) -> String {
    [
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
        ("a sequence", "an array"),
        ("expected a map", "expected a table"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: floating point", "invalid type: float"),
    ]
    .iter()
    .fold(message.to_string(), |m, (from, to)| m.replace(from, to))
}

fn syntax_error(file: &str, src: &str, e: &toml::de::Error) -> ConfigError {
    let (line, field) = match e.span() {
        Some(span) => (
            locate::line_of_offset(src, span.start),
            locate::field_at_offset(src, key_start(src, span.start)),
        ),
        None => (1, String::new()),
    };
    ConfigError {
        file: file.to_string(),
        line: Some(line),
        // Empty only when the faulty line has no key at all (such as `= 5`).
        field,
        message: first_line(e.message()),
    }
}

/// For an error inside a value (`image = nginx`), the offset of the line's key, so that the
/// field is named after the key and not after the bad value.
fn key_start(src: &str, offset: usize) -> usize {
    let offset = offset.min(src.len());
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &src[line_start..offset];
    if before.contains('=') {
        line_start + (before.len() - before.trim_start().len())
    } else {
        offset
    }
}

fn first_line(s: &str) -> String {
    s.trim().lines().next().unwrap_or_default().to_string()
}
