//! Plain-text tables: columns as wide as their widest cell, two spaces apart, header first.

/// Renders `header` and `rows` as aligned columns, one line each; the last column is not padded,
/// so no line ends in spaces. Widths count characters, not bytes.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(width) => *width = (*width).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["pi-a".to_string(), "x".to_string(), "last".to_string()],
            vec![
                "longer-name".to_string(),
                "yyyy".to_string(),
                "l".to_string(),
            ],
        ];
        assert_eq!(
            render(&["NAME", "V", "END"], &rows),
            "NAME         V     END\n\
             pi-a         x     last\n\
             longer-name  yyyy  l\n"
        );
    }

    #[test]
    fn widths_count_characters_and_lines_never_end_in_spaces() {
        let rows = vec![vec!["zone=küche".to_string(), String::new()]];
        let text = render(&["LABELS", "TAIL"], &rows);
        assert_eq!(text, "LABELS      TAIL\nzone=küche\n");
    }
}
