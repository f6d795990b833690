//! Sample responses generated from a schema's `returns`, in the shapes Proxmox's Perl may send
//! (native JSON, only the required members, numbers and booleans as strings and 0/1).

use serde_json::{Map, Value, json};

use super::{num, truthy};

#[derive(Clone, Copy, Debug)]
pub(super) enum Mode {
    /// Every property, native JSON types, booleans as JSON booleans.
    Full,
    /// Only the properties the schema requires.
    Minimal,
    /// Every property the way Perl often serialises: numbers as strings, booleans as 0/1.
    Perl,
}

pub(super) fn generate(schema: &Value, mode: Mode, top_string: Option<&str>) -> Value {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or(
        if schema.get("properties").is_some() {
            "object"
        } else {
            "string"
        },
    );
    match ty {
        "object" => {
            let mut m = Map::new();
            for (k, p) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if matches!(mode, Mode::Minimal) && p.get("optional").is_some_and(truthy) {
                    continue;
                }
                m.insert(k.clone(), generate(p, mode, None));
            }
            Value::Object(m)
        }
        "array" => match schema.get("items") {
            Some(items) => json!([generate(items, mode, None)]),
            None => json!([]),
        },
        "integer" => {
            let n = schema
                .get("minimum")
                .and_then(num)
                .map_or(1, |m| m.max(1.0) as i64);
            match mode {
                Mode::Perl => json!(n.to_string()),
                _ => json!(n),
            }
        }
        "number" => match mode {
            Mode::Perl => json!("0.5"),
            _ => json!(0.5),
        },
        "boolean" => match mode {
            Mode::Full => json!(true),
            _ => json!(1),
        },
        "null" => Value::Null,
        _ => {
            if let Some(s) = top_string {
                return json!(s);
            }
            if let Some(first) = schema
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
            {
                return first.clone();
            }
            json!("x")
        }
    }
}
