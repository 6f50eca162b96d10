//! The first value a check's query answers, whatever its SQL type, and what it means for
//! an `expect` (a number) or a newest write (a time).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Time(DateTime<Utc>),
    Bool(bool),
    Text(String),
    Null,
}

impl Value {
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    /// A newest write: a timestamp (one without a zone is UTC), a date, or seconds since
    /// the epoch.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Time(t) => Some(*t),
            Value::Number(n) if n.is_finite() => DateTime::from_timestamp(*n as i64, 0),
            Value::Text(t) => parse_time(t),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Value::Number(n) => write!(f, "{n}"),
            Value::Time(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(t) => write!(f, "{t}"),
            Value::Null => write!(f, "NULL"),
        }
    }
}

pub fn naive(t: NaiveDateTime) -> Value {
    Value::Time(t.and_utc())
}

pub fn date(d: NaiveDate) -> Value {
    Value::Time(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(t) = DateTime::parse_from_str(t, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(t, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// PostgreSQL's binary `numeric`: digit count, weight, sign and scale (i16/i16/u16/u16),
/// then base-10000 digits, most significant first; `None` for NaN or a malformed value.
pub fn pg_numeric(bytes: &[u8]) -> Option<f64> {
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16;
    let sign = word(4)?;
    if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
        return None;
    }
    let mut value = 0f64;
    for i in 0..ndigits {
        let digit = f64::from(word(8 + 2 * i)?);
        value += digit * 10000f64.powi(i32::from(weight) - i as i32);
    }
    Some(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_are_read_whatever_the_sql_type() {
        assert_eq!(Value::Text("1234".into()).number(), Some(1234.0));
        assert_eq!(Value::Text("12.50".into()).number(), Some(12.5));
        assert_eq!(Value::Null.number(), None);
        let t = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            "2026-12-04T10:00:00Z",
            "2026-12-04 10:00:00",
            "2026-12-04 11:00:00+01",
            "2026-12-04 10:00:00.000000",
        ] {
            assert_eq!(Value::Text(text.into()).time(), Some(t), "{text}");
        }
        assert_eq!(Value::Number(t.timestamp() as f64).time(), Some(t));
        assert_eq!(Value::Number(1000.0).to_string(), "1000");
        assert_eq!(Value::Time(t).to_string(), "2026-12-04 10:00:00 UTC");
    }

    #[test]
    fn postgres_binary_numerics_decode() {
        // 12345.678: ndigits 3, weight 1, sign +, dscale 3; digits 1, 2345, 6780.
        let bytes = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C];
        let v = pg_numeric(&bytes).unwrap();
        assert!((v - 12345.678).abs() < 1e-9, "{v}");
        // -0.5: ndigits 1, weight -1, sign -, dscale 1; digit 5000.
        let bytes = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 1, 0x13, 0x88];
        assert_eq!(pg_numeric(&bytes), Some(-0.5));
        assert_eq!(pg_numeric(&[0, 0, 0, 0, 0, 0, 0, 0]), Some(0.0));
        assert_eq!(pg_numeric(&[0, 0, 0, 0, 0xC0, 0, 0, 0]), None);
        assert_eq!(pg_numeric(&[0, 1]), None);
    }
}
