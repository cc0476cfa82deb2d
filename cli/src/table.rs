//! Aligned text tables for people: a header row and left-aligned columns two spaces apart; cell
//! text from the server is neutralised for the terminal.

pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| logging::escape_for_terminal(&c).into_owned())
            .collect();
        self.rows.push(cells);
    }

    /// The table, each line ending in `\n`, without trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `yes` / `no`.
pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_data_cannot_escape() {
        let mut table = Table::new(&["POOL", "READY"]);
        table.row(vec!["default".into(), yes_no(true)]);
        table.row(vec!["x\x1b[2J".into(), yes_no(false)]);
        assert_eq!(
            table.render(),
            "POOL        READY\ndefault     yes\nx\\u{1b}[2J  no\n"
        );
    }
}
