//! Finding where in a TOML document a key or a byte offset is, for error messages.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

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

/// Where every key and value of a parsed TOML document is, by dotted field path
/// (`resources.memory`, `surge[1].dates[0]`, `env."odd key"`). Built from toml's spanned
/// document, so nested tables, inline tables, dotted keys and arrays of tables all resolve.
pub(crate) struct SpanIndex {
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    entries: Vec<SpanEntry>,
}

struct SpanEntry {
    path: String,
    /// Where the key is written; `None` for array elements.
    key: Option<Range<usize>>,
    value: Range<usize>,
}

impl SpanIndex {
    /// Indexes `root`, parsed from `src`.
    pub(crate) fn new(src: &str, root: &DeTable<'_>) -> SpanIndex {
        let mut line_starts = vec![0];
        line_starts.extend(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut index = SpanIndex {
            line_starts,
            entries: Vec::new(),
        };
        index.add_table("", root);
        index
    }

    fn add_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let path = join(prefix, &quote_key(key.get_ref()));
            self.entries.push(SpanEntry {
                path: path.clone(),
                key: Some(key.span()),
                value: value.span(),
            });
            self.add_value(&path, value.get_ref());
        }
    }

    fn add_value(&mut self, path: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(t) => self.add_table(path, t),
            DeValue::Array(a) => {
                for (i, element) in a.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    self.entries.push(SpanEntry {
                        path: path.clone(),
                        key: None,
                        value: element.span(),
                    });
                    self.add_value(&path, element.get_ref());
                }
            }
            _ => {}
        }
    }

    /// 1-based line of byte `offset`.
    pub(crate) fn line_of_offset(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// 1-based line of `path`: where its key is written (or, for an array element, its value).
    /// A path not in the file resolves to its nearest written parent; a top-level key that is
    /// not written resolves to line 1.
    pub(crate) fn line_of(&self, path: &str) -> usize {
        let mut path = path;
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == path) {
                let at = e.key.as_ref().unwrap_or(&e.value).start;
                return self.line_of_offset(at);
            }
            match parent(path) {
                Some(p) => path = p,
                None => return 1,
            }
        }
    }

    /// The field at byte `offset`: the key written there, else the innermost value around it.
    pub(crate) fn path_at(&self, offset: usize) -> Option<&str> {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.key.as_ref().is_some_and(|k| k.contains(&offset)))
        {
            return Some(&e.path);
        }
        self.entries
            .iter()
            .filter(|e| e.value.contains(&offset) || e.value.start == offset)
            .min_by_key(|e| e.value.len())
            .map(|e| e.path.as_str())
    }
}

/// The path one level up: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none.
fn parent(path: &str) -> Option<&str> {
    if let Some(stripped) = path.strip_suffix(']') {
        return stripped.rfind('[').map(|i| &path[..i]);
    }
    // The last '.' outside quotes.
    let mut quoted = false;
    let mut last = None;
    for (i, c) in path.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => last = Some(i),
            _ => {}
        }
    }
    last.map(|i| &path[..i])
}

/// A key as it appears in a dotted path: bare when it may be written bare in TOML, else quoted.
pub(crate) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
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
    #[test]
    fn span_index_resolves_nested_inline_and_array_tables() {
        let src = "name = \"web\"\nresources = { memory = \"64Mi\",\n  pids = 4 }\n\
                   env.\"A.B\" = \"x\"\n[[surge]]\ndates = [\"2026-01-01\"]\n\n[[surge]]\n\
                   dates = [\n  \"2026-01-02\",\n  \"2026-02-30\",\n]\nmax = 3\n\
                   [scale]\nmin = 1\n";
        let root = DeTable::parse(src).unwrap();
        let index = SpanIndex::new(src, root.get_ref());
        assert_eq!(index.line_of("name"), 1);
        assert_eq!(index.line_of("resources.memory"), 2);
        assert_eq!(index.line_of("resources.pids"), 3);
        assert_eq!(index.line_of("resources.cpu"), 2);
        assert_eq!(index.line_of("env.\"A.B\""), 4);
        assert_eq!(index.line_of("surge[0]"), 5);
        assert_eq!(index.line_of("surge[1]"), 8);
        assert_eq!(index.line_of("surge[1].dates[1]"), 11);
        assert_eq!(index.line_of("surge[1].max"), 13);
        assert_eq!(index.line_of("scale.max"), 14);
        assert_eq!(index.line_of("scale"), 14);
        assert_eq!(index.line_of("health.http"), 1);
        let at = src.find("2026-02-30").unwrap();
        assert_eq!(index.path_at(at), Some("surge[1].dates[1]"));
        assert_eq!(
            index.path_at(src.find("pids").unwrap()),
            Some("resources.pids")
        );
        assert_eq!(index.line_of_offset(at), 11);
        assert_eq!(parent("surge[1].dates[0]"), Some("surge[1].dates"));
        assert_eq!(parent("env.\"A.B\""), Some("env"));
        assert_eq!(parent("name"), None);
    }
}
