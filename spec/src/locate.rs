//! Finding where in a TOML document a key or a byte offset is, for error messages.

/// 1-based line number of byte offset `offset` in `src`.
pub(crate) fn line_of_offset(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted field path of the key that starts at byte `offset`: the enclosing `[table]` header
/// plus the bare key found there. Used to name the field of a parser error.
pub(crate) fn field_at_offset(src: &str, offset: usize) -> String {
    let offset = offset.min(src.len());
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
    let line = &src[line_start..line_end];
    let table = enclosing_table(&src[..line_start]);
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        return header_name(trimmed).unwrap_or_default();
    }
    let key: String = line[offset - line_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
        .collect();
    let key = if key.is_empty() {
        trimmed
            .split('=')
            .next()
            .map(|k| k.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    } else {
        key
    };
    join(&table, &key)
}

/// 1-based line of `key` inside table `table` ("" for the top level), if present.
pub(crate) fn line_of_key(src: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('[') {
            current = header_name(t).unwrap_or_default();
            continue;
        }
        if current != table {
            continue;
        }
        if let Some(rest) = t.strip_prefix(key) {
            let rest = rest.trim_start();
            if rest.starts_with('=') {
                return Some(i + 1);
            }
        }
    }
    None
}

/// 1-based line of the header `[table]`, if present.
pub(crate) fn line_of_table(src: &str, table: &str) -> Option<usize> {
    src.lines()
        .position(|l| header_name(l.trim_start()).as_deref() == Some(table))
        .map(|i| i + 1)
}

fn enclosing_table(before: &str) -> String {
    before
        .lines()
        .rev()
        .find_map(|l| header_name(l.trim_start()))
        .unwrap_or_default()
}

fn header_name(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(inner[..end].trim().to_string())
}

fn join(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => table.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# comment\n[api]\ntoken = \"x\"\n\n[network]\nmode = \"dhcp\"\nbogus = 1\n";

    #[test]
    fn finds_lines_and_fields() {
        assert_eq!(line_of_key(DOC, "network", "mode"), Some(6));
        assert_eq!(line_of_key(DOC, "api", "mode"), None);
        assert_eq!(line_of_table(DOC, "network"), Some(5));
        let off = DOC.find("bogus").unwrap();
        assert_eq!(line_of_offset(DOC, off), 7);
        assert_eq!(field_at_offset(DOC, off), "network.bogus");
        assert_eq!(
            field_at_offset(DOC, DOC.find("[network]").unwrap()),
            "network"
        );
    }
}
