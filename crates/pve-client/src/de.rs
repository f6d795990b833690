//! Lenient decoding of Proxmox VE's JSON (written by Perl): numbers may arrive as strings
//! (`"memory":"2048"`, `/cluster/nextid` → `"100"`), booleans as `0`/`1`, and optional fields are
//! often simply absent. Use these functions with `#[serde(deserialize_with = "...")]`; for an
//! `Option` field also add `#[serde(default)]`.
//!
//! A value that fits none of the accepted forms yields an error that says what was expected and
//! what came; [`decode`] wraps it into [`PveError::Decode`] with an excerpt of the body.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::PveError;

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(60).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn value_to_i128(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e18)
                    .map(|f| f as i128)
            }),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i128>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e18)
                    .map(|f| f as i128)
            })
        }
        Value::Bool(b) => Some(i128::from(*b)),
        _ => None,
    }
}

fn value_to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn value_to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "" => Some(false),
            word => bool_word(word),
        },
        _ => None,
    }
}

/// The words read as a boolean: `1`/`true`/`yes`/`on` and `0`/`false`/`no`/`off`, matched
/// exactly (callers that accept more trim or lowercase first). The one list behind `bool` and
/// `opt_bool` here, [`crate::propstring::PropertyString::get_bool`] and
/// `PVE_INSECURE_SKIP_VERIFY`.
pub fn bool_word(s: &str) -> Option<bool> {
    match s {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn int_of<'de, D: Deserializer<'de>, T: TryFrom<i128>>(v: Value) -> Result<T, D::Error> {
    let n = value_to_i128(&v).ok_or_else(|| {
        D::Error::custom(format!(
            "expected an integer (number or numeric string), got {}",
            describe(&v)
        ))
    })?;
    T::try_from(n).map_err(|_| D::Error::custom(format!("integer {n} is out of range")))
}

macro_rules! lenient_int {
    ($name:ident, $opt:ident, $t:ty) => {
        #[doc = concat!("Decodes a `", stringify!($t), "` given as a JSON number or a numeric string.")]
        pub fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
            int_of::<D, $t>(Value::deserialize(d)?)
        }

        #[doc = concat!("Decodes an optional `", stringify!($t), "`: absent, `null` or `\"\"` give `None`.")]
        pub fn $opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            match Value::deserialize(d)? {
                Value::Null => Ok(None),
                Value::String(s) if s.trim().is_empty() => Ok(None),
                v => int_of::<D, $t>(v).map(Some),
            }
        }
    };
}

lenient_int!(u64, opt_u64, u64);
lenient_int!(i64, opt_i64, i64);
lenient_int!(u32, opt_u32, u32);

fn float_of<'de, D: Deserializer<'de>>(v: Value) -> Result<f64, D::Error> {
    value_to_f64(&v)
        .ok_or_else(|| D::Error::custom(format!("expected a number, got {}", describe(&v))))
}

fn bool_of<'de, D: Deserializer<'de>>(v: Value) -> Result<bool, D::Error> {
    value_to_bool(&v)
        .ok_or_else(|| D::Error::custom(format!("expected a boolean (0/1), got {}", describe(&v))))
}

/// Decodes an `f64` given as a JSON number or a numeric string.
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    float_of::<D>(Value::deserialize(d)?)
}

/// Decodes an optional `f64`: absent, `null` or `""` give `None`.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        v => float_of::<D>(v).map(Some),
    }
}

/// Decodes a boolean given as `true`/`false`, `0`/`1` or their string forms.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    bool_of::<D>(Value::deserialize(d)?)
}

/// Decodes an optional boolean: absent or `null` give `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => bool_of::<D>(v).map(Some),
    }
}

fn string_of<'de, D: Deserializer<'de>>(v: Value) -> Result<String, D::Error> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if b { "1" } else { "0" }.to_owned()),
        other => Err(D::Error::custom(format!(
            "expected a string, got {}",
            describe(&other)
        ))),
    }
}

/// Decodes a string that may arrive as a number (the task `id`, config values).
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    string_of::<D>(Value::deserialize(d)?)
}

/// Decodes an optional string that may arrive as a number.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => string_of::<D>(v).map(Some),
    }
}

/// Decodes `data` into `T`; a mismatch becomes [`PveError::Decode`] naming `context` and quoting
/// the start of `body` (never a bare serde message).
pub fn decode<T: DeserializeOwned>(data: Value, context: &str, body: &[u8]) -> Result<T, PveError> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let reason = if path.is_empty() || path == "." {
            e.inner().to_string()
        } else {
            format!("field `{path}`: {}", e.inner())
        };
        PveError::decode(context, reason, body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "u64")]
        memory: u64,
        #[serde(default, deserialize_with = "opt_u32")]
        balloon: Option<u32>,
        #[serde(default, deserialize_with = "opt_bool")]
        template: Option<bool>,
        #[serde(deserialize_with = "bool")]
        enabled: bool,
        #[serde(deserialize_with = "string")]
        id: String,
        #[serde(default, deserialize_with = "opt_f64")]
        cpulimit: Option<f64>,
        #[serde(deserialize_with = "f64")]
        cpu: f64,
    }

    fn sample(json: &str) -> Result<Sample, PveError> {
        decode(
            serde_json::from_str(json).unwrap(),
            "GET /test",
            json.as_bytes(),
        )
    }

    #[test]
    fn numbers_as_strings_and_zero_one_booleans_decode() {
        let s = sample(r#"{"memory":"2048","balloon":"0","template":1,"enabled":"1","id":100,"cpulimit":"1.5","cpu":"0.25"}"#)
            .unwrap();
        assert_eq!(
            s,
            Sample {
                memory: 2048,
                balloon: Some(0),
                template: Some(true),
                enabled: true,
                id: "100".into(),
                cpulimit: Some(1.5),
                cpu: 0.25,
            }
        );
    }

    #[test]
    fn native_json_types_decode_too() {
        let s =
            sample(r#"{"memory":2048,"template":false,"enabled":0,"id":"abc","cpu":1}"#).unwrap();
        assert_eq!(s.memory, 2048);
        assert_eq!(s.template, Some(false));
        assert!(!s.enabled);
        assert_eq!(s.balloon, None);
        assert_eq!(s.cpulimit, None);
    }

    #[test]
    fn missing_optional_fields_and_nulls_are_none() {
        let s = sample(
            r#"{"memory":1,"enabled":true,"id":"1","cpu":0,"balloon":null,"template":null}"#,
        )
        .unwrap();
        assert_eq!(s.balloon, None);
        assert_eq!(s.template, None);
    }

    #[test]
    fn wrong_shapes_give_a_decode_error_with_context_and_excerpt() {
        let json = r#"{"memory":"lots","enabled":1,"id":"1","cpu":0}"#;
        match sample(json) {
            Err(PveError::Decode {
                context,
                reason,
                excerpt,
            }) => {
                assert_eq!(context, "GET /test");
                assert!(
                    reason.contains("expected an integer") && reason.contains("lots"),
                    "{reason}"
                );
                assert!(excerpt.contains("\"memory\":\"lots\""), "{excerpt}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sample(r#"{"memory":1,"enabled":2,"id":"1","cpu":0}"#),
            Err(PveError::Decode { .. })
        ));
        assert!(matches!(
            sample(r#"{"memory":-1,"enabled":1,"id":"1","cpu":0}"#),
            Err(PveError::Decode { .. })
        ));
        assert!(matches!(sample(r#"[1,2]"#), Err(PveError::Decode { .. })));
        assert!(matches!(
            sample(r#"{"enabled":1,"id":"1","cpu":0}"#),
            Err(PveError::Decode { .. })
        ));
    }
}
