use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, in UTC, written as RFC 3339 (`2026-11-27T12:00:00Z`).
///
/// Input may carry any offset; it is converted to UTC. Output always ends in `Z` and shows
/// sub-second digits only when there are any.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current time. Only the executor and adapters call this: planning takes `now` as input.
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// Wraps a chrono UTC time.
    pub const fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at)
    }

    /// The chrono UTC time.
    pub const fn as_datetime(&self) -> &DateTime<Utc> {
        &self.0
    }

    /// Seconds since the Unix epoch, as Docker reports container creation.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        DateTime::from_timestamp(seconds, 0).map(Self)
    }

    /// Microseconds since the Unix epoch (the precision the stores keep).
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The inverse of [`Timestamp::unix_micros`].
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Self)
    }

    /// `self - earlier`, or zero when `earlier` is later than `self` (clocks may disagree).
    pub fn saturating_since(&self, earlier: Timestamp) -> std::time::Duration {
        (self.0 - earlier.0).to_std().unwrap_or_default()
    }

    /// `self + d`, saturating at the largest representable time.
    pub fn saturating_add(&self, d: std::time::Duration) -> Self {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| self.0.checked_add_signed(d))
            .map_or(Self(DateTime::<Utc>::MAX_UTC), Self)
    }

    /// `self - d`, saturating at the smallest representable time.
    pub fn saturating_sub(&self, d: std::time::Duration) -> Self {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| self.0.checked_sub_signed(d))
            .map_or(Self(DateTime::<Utc>::MIN_UTC), Self)
    }
}

/// Text that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {value:?}: expected RFC 3339 such as 2026-11-27T12:00:00Z")]
pub struct ParseTimestampError {
    /// The rejected text.
    pub value: String,
}

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|_| ParseTimestampError {
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_offsets_to_utc() {
        let t: Timestamp = "2026-11-27T13:00:00+01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-27T12:00:00Z");
        let t: Timestamp = "2026-11-27T12:00:00.250Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-27T12:00:00.250Z");
    }

    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "",
            "2026-11-27",
            "2026-11-27 12:00:00",
            "yesterday",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn since_saturates() {
        let a: Timestamp = "2026-11-27T12:00:00Z".parse().unwrap();
        let b: Timestamp = "2026-11-27T12:00:30Z".parse().unwrap();
        assert_eq!(b.saturating_since(a).as_secs(), 30);
        assert_eq!(a.saturating_since(b).as_secs(), 0);
    }
}
