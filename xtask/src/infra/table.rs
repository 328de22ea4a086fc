//! Plain-text tables for terminals and logs: no borders, columns as wide as their widest
//! cell (header included) and two spaces apart, left-aligned unless a column is numeric
//! (right-aligned). The last column is not padded, so no line ends in spaces. Widths count
//! characters (`≠`, `→` and `✗` are one), which is what every cell here holds.

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table: a header, rows of cells, a prefix for every line.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    indent: String,
}

const GAP: &str = "  ";

impl Table {
    /// A table with these column headers, all left-aligned.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        Self {
            align: vec![Align::Left; header.len()],
            header,
            rows: Vec::new(),
            indent: String::new(),
        }
    }

    /// Every line starts with this (e.g. two spaces under a summary line).
    pub fn indent(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.indent);
        self
    }

    /// Right-aligns column `index` (numbers).
    pub fn right(mut self, index: usize) -> Self {
        if let Some(align) = self.align.get_mut(index) {
            *align = Align::Right;
        }
        self
    }

    /// Adds a row; missing cells are empty, extra ones are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header and every row, each line ending in `\n`.
    pub fn render(&self) -> String {
        let width = |cell: &String| cell.chars().count();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| width(&row[column]))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = self.indent.clone();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str(GAP);
                }
                let pad = " ".repeat(widths[column] - width(cell));
                match self.align[column] {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut table = Table::new(["case", "n", "verdict"]).indent("  ").right(1);
        table.row([
            "upstream.a_rather_long_case_name_from_the_tree",
            "7",
            "pass",
        ]);
        table.row(["≠ short", "123", ""]);
        assert_eq!(
            table.render(),
            "  case                                              n  verdict\n\
             \x20 upstream.a_rather_long_case_name_from_the_tree    7  pass\n\
             \x20 ≠ short                                         123\n"
        );
    }

    #[test]
    fn missing_cells_are_empty() {
        let mut table = Table::new(["a", "b"]);
        table.row(["x"]);
        assert_eq!(table.render(), "a  b\nx\n");
    }
}
