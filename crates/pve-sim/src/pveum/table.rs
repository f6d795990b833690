//! pveum's `text` output: API answers as the box-drawing tables `PVE::CLIFormatter` prints.

use serde_json::{Map, Value};

/// A cell as pveum's text formatter renders it (objects and arrays as compact JSON).
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A box-drawing table like `PVE::CLIFormatter` prints.
pub fn render_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain(std::iter::once(h.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule = |l: &str, m: &str, r: &str, fill: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    let line = |cells: &[String]| {
        let parts: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                format!(" {c}{} ", " ".repeat(w - c.chars().count()))
            })
            .collect();
        format!("│{}│\n", parts.join("│"))
    };
    let mut out = rule("┌", "┬", "┐", "─");
    out.push_str(&line(headers));
    out.push_str(&rule("╞", "╪", "╡", "═"));
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(&rule("├", "┼", "┤", "─"));
        }
        out.push_str(&line(r));
    }
    out.push_str(&rule("└", "┴", "┘", "─"));
    out
}

/// The key column of list answers, printed first.
const KEY_COLUMNS: &[&str] = &["userid", "tokenid", "groupid", "roleid", "poolid", "path"];

/// Renders an API answer as pveum's `text` output.
pub fn render_text(data: &Value) -> String {
    match data {
        Value::Null => String::new(),
        Value::Object(m) => {
            let rows: Vec<Vec<String>> = m.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
            render_table(&["key".to_string(), "value".to_string()], &rows)
        }
        Value::Array(items) => {
            let mut cols: Vec<String> = Vec::new();
            for item in items.iter().filter_map(Value::as_object) {
                for k in item.keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            cols.sort_by_key(|c| {
                (
                    KEY_COLUMNS
                        .iter()
                        .position(|k| k == c)
                        .unwrap_or(usize::MAX),
                    c.clone(),
                )
            });
            let empty = Map::new();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    let obj = item.as_object().unwrap_or(&empty);
                    cols.iter()
                        .map(|c| obj.get(c).map(cell).unwrap_or_default())
                        .collect()
                })
                .collect();
            render_table(&cols, &rows)
        }
        other => format!("{}\n", cell(other)),
    }
}
