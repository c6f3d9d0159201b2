//! How events look on a terminal: one line each (`format_line`), or a table of a page of them
//! (`table`).

use serde_json::Value;

fn s<'a>(e: &'a Value, key: &str) -> &'a str {
    e[key].as_str().unwrap_or("")
}

/// `<occurred_at>  <event>  branch=<b>  <kind>:<id>  id=<event id>` (with `parent=` for a child).
pub fn format_line(e: &Value) -> String {
    let mut line = format!("{}  {}", s(e, "occurred_at"), s(e, "event"));
    if let Some(b) = e["branch"].as_str() {
        line.push_str(&format!("  branch={b}"));
    }
    if let Some(p) = e["primary_node"].as_object() {
        let kind = p.get("kind").and_then(Value::as_str).unwrap_or("");
        let id = p.get("id").and_then(Value::as_str).unwrap_or("");
        line.push_str(&format!("  {kind}:{id}"));
    }
    if let Some(parent) = e["parent_id"].as_str() {
        line.push_str(&format!("  parent={parent}"));
    }
    line.push_str(&format!("  id={}", s(e, "id")));
    line
}

/// A table of `events`: time, event, branch, primary node, id; columns padded to fit.
pub fn table(events: &[Value]) -> String {
    let header = ["OCCURRED_AT", "EVENT", "BRANCH", "PRIMARY_NODE", "ID"];
    let rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            let primary = e["primary_node"]
                .as_object()
                .map(|p| {
                    format!(
                        "{}:{}",
                        p.get("kind").and_then(Value::as_str).unwrap_or(""),
                        p.get("id").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .unwrap_or_default();
            [
                s(e, "occurred_at").to_owned(),
                s(e, "event").to_owned(),
                s(e, "branch").to_owned(),
                primary,
                s(e, "id").to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: [&str; 5]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(header);
    for r in &rows {
        out.push('\n');
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out
}
