//! Splitting Debian control-format text (deb822: `Release`, `Packages`, `control`) into stanzas.

/// One paragraph of `Key: value` fields. Values keep their continuation lines (joined by `\n`,
/// leading blank of each continuation line kept).
#[derive(Debug, Clone, Default)]
pub(crate) struct Stanza<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Stanza<'a> {
    /// The value of `key` (field names are case-insensitive), trimmed.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
    }
}

/// The stanzas of `text`, separated by blank lines. Lines that are neither a field, a continuation
/// nor blank (such as comments) are skipped.
pub(crate) fn stanzas(text: &str) -> Vec<Stanza<'_>> {
    let mut out = Vec::new();
    let mut current = Stanza::default();
    // (key, value start offset, value end offset)
    let mut open: Option<(&str, usize, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let body_end = start + body.len();
        if body.trim().is_empty() {
            close(text, &mut open, &mut current);
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if body.starts_with([' ', '\t']) {
            if let Some((_, _, end)) = open.as_mut() {
                *end = body_end;
            }
        } else if body.starts_with('#') {
            continue;
        } else if let Some(colon) = body.find(':') {
            close(text, &mut open, &mut current);
            open = Some((&text[start..start + colon], start + colon + 1, body_end));
        }
    }
    close(text, &mut open, &mut current);
    if !current.fields.is_empty() {
        out.push(current);
    }
    out
}

fn close<'a>(text: &'a str, open: &mut Option<(&'a str, usize, usize)>, into: &mut Stanza<'a>) {
    if let Some((key, start, end)) = open.take() {
        into.fields.push((key, &text[start..end]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_fields_continuations_and_stanzas() {
        let text = "Package: a\nVersion: 1.0\nDescription: short\n long line\n .\n\n\
                    \n# comment\npackage: b\r\nDepends: c (>= 1), d | e\r\n";
        let s = stanzas(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("package"), Some("a"));
        assert_eq!(s[0].get("Description"), Some("short\n long line\n ."));
        assert_eq!(s[1].get("Package"), Some("b"));
        assert_eq!(s[1].get("depends"), Some("c (>= 1), d | e"));
        assert_eq!(s[1].get("Version"), None);
    }
}
