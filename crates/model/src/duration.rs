//! The duration syntax of the configuration: an integer and a unit, `500ms`, `30s`, `2m`, `1h`.
//!
//! Use with serde as `#[serde(with = "galaxy_runtime_model::duration")]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Text that is not a duration such as `500ms`, `30s`, `2m` or `1h`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {value:?}: expected a whole number and a unit (ms, s, m, h), such as 500ms, 30s, 2m or 1h"
)]
pub struct ParseDurationError {
    /// The rejected text.
    pub value: String,
}

/// Parses `500ms`, `30s`, `2m`, `1h` (whole numbers only; no spaces, no sign).
pub fn parse(text: &str) -> Result<Duration, ParseDurationError> {
    let err = || ParseDurationError {
        value: text.to_owned(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(err)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| err())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(err()),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(err)
}

/// Writes a duration in the largest unit that represents it exactly (`120s` is `2m`).
///
/// Sub-millisecond parts are dropped: the syntax has no smaller unit.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, per) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// Serde serialisation in this syntax.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*d))
}

/// Serde deserialisation from this syntax.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The same syntax for a duration that must be longer than `0s` (a timeout, an interval):
/// `#[serde(with = "galaxy_runtime_model::duration::non_zero")]`.
pub mod non_zero {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Serde serialisation, as [`super::serialize`].
    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        super::serialize(d, serializer)
    }

    /// Serde deserialisation, refusing `0s` (and `0ms`, `0m`, `0h`).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let d = super::deserialize(deserializer)?;
        if d.is_zero() {
            return Err(serde::de::Error::custom("must be longer than 0s"));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "30",
            "s",
            "-1s",
            "1.5s",
            "30 s",
            "30sec",
            "1d",
            "1h30m",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::ZERO), "0s");
        for d in ["1500ms", "45s", "3m", "5h"] {
            assert_eq!(format(parse(d).unwrap()), d);
        }
    }
}
