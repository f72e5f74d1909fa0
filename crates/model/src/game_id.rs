use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The identity of a game: a UUID, always printed lowercase and hyphenated (8-4-4-4-12).
///
/// Parsing accepts only the hyphenated form, in either case, so that `galaxy-game-<id>` container
/// names and JSON documents have exactly one spelling per game.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GameId(Uuid);

/// Ordered as the UUID's bytes are, compared as one integer: game ids key the large sorted maps
/// of an observation, where a byte-wise comparison per step was a measurable share of planning.
impl Ord for GameId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_u128().cmp(&other.0.as_u128())
    }
}

impl PartialOrd for GameId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl GameId {
    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// A fresh random (v4) game id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

/// A string that is not a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid game id {value:?}: expected a hyphenated UUID such as 6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60"
)]
pub struct ParseGameIdError {
    /// The text that was rejected (escaped when printed).
    pub value: String,
}

/// The places of the first 16 hex digits of a hyphenated UUID, and of the last 16.
const HIGH_DIGITS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17];
const LOW_DIGITS: [usize; 16] = [
    19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
];

/// The value of each hex digit, either case; 0xFF for every other byte.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

impl FromStr for GameId {
    type Err = ParseGameIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Hand-rolled for the one accepted form: container names are parsed once per container
        // per pass, and a general UUID parser costs several times more on large fleets.
        let err = || ParseGameIdError {
            value: s.to_owned(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
            return Err(err());
        }
        // Each half of the id is 16 digits at fixed places; a digit's value comes from a table,
        // and a character that is no digit (0xFF) is caught once for the whole id, so that the
        // loop has no branch per character.
        let digit = |i: usize| HEX_DIGITS[usize::from(bytes[i])];
        let (mut high, mut low, mut seen) = (0u64, 0u64, 0u8);
        for i in HIGH_DIGITS {
            let d = digit(i);
            seen |= d;
            high = (high << 4) | u64::from(d & 0x0F);
        }
        for i in LOW_DIGITS {
            let d = digit(i);
            seen |= d;
            low = (low << 4) | u64::from(d & 0x0F);
        }
        if seen > 0x0F {
            return Err(err());
        }
        let value = (u128::from(high) << 64) | u128::from(low);
        Ok(Self(Uuid::from_u128(value)))
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GameId({})", self.0.hyphenated())
    }
}

impl From<Uuid> for GameId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl Serialize for GameId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GameId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_lowercase_hyphenated() {
        let id: GameId = "ABCDEF01-2345-6789-ABCD-EF0123456789".parse().unwrap();
        assert_eq!(id.to_string(), "abcdef01-2345-6789-abcd-ef0123456789");
    }

    #[test]
    fn parses_like_the_uuid_crate() {
        for text in [
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60",
            "6F1C0E7A-3B8D-4F7C-9E2A-1B2C3D4E5F60",
        ] {
            let ours: GameId = text.parse().unwrap();
            assert_eq!(*ours.as_uuid(), Uuid::parse_str(text).unwrap(), "{text}");
        }
    }

    #[test]
    fn orders_as_the_uuid_bytes() {
        let ids: Vec<GameId> = [
            "00000000-0000-0000-0000-0000000000ff",
            "00000000-0000-0000-0000-000000000100",
            "ff000000-0000-0000-0000-000000000000",
            "0f000000-0000-0000-0000-000000000001",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        for a in &ids {
            for b in &ids {
                assert_eq!(a.cmp(b), a.as_uuid().as_bytes().cmp(b.as_uuid().as_bytes()));
            }
        }
    }

    #[test]
    fn rejects_other_spellings() {
        for bad in [
            "",
            "abcdef0123456789abcdef0123456789",
            "{abcdef01-2345-6789-abcd-ef0123456789}",
            "urn:uuid:abcdef01-2345-6789-abcd-ef0123456789",
            "abcdef01-2345-6789-abcd-ef012345678g",
            "abcdef01-2345-6789-abcd-ef01234567890",
            "abcdef0-12345-6789-abcd-ef0123456789",
            "abcdef01-2345-6789-abcd-ef01234567\u{e9}",
            "abcdef01+2345-6789-abcd-ef0123456789",
            " bcdef01-2345-6789-abcd-ef0123456789",
        ] {
            assert!(bad.parse::<GameId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn json_round_trip_and_error() {
        let id = GameId::new_random();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<GameId>(&json).unwrap(), id);
        let err = serde_json::from_str::<GameId>("\"nope\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid game id \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn parses_as_the_uuid_crate_does_and_refuses_every_other_byte() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uuid = Uuid::from_u128(u128::from(state) << 64 | u128::from(state.rotate_left(17)));
            let text = uuid.hyphenated().to_string();
            assert_eq!(text.parse::<GameId>().unwrap().as_uuid(), &uuid, "{text}");
            let upper = text.to_uppercase();
            assert_eq!(upper.parse::<GameId>().unwrap().as_uuid(), &uuid, "{upper}");
        }
        let good = "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60";
        for place in 0..36 {
            for bad in [
                b'g', b'G', b' ', b'/', b':', b'@', b'`', 0x00, 0x80, 0xFF, b'-',
            ] {
                let mut bytes = good.as_bytes().to_vec();
                if bytes[place] == bad {
                    continue;
                }
                bytes[place] = bad;
                let Ok(text) = String::from_utf8(bytes) else {
                    continue;
                };
                assert!(text.parse::<GameId>().is_err(), "{text:?} parsed");
            }
            // A digit where a hyphen belongs.
            if [8, 13, 18, 23].contains(&place) {
                let text = format!("{}0{}", &good[..place], &good[place + 1..]);
                assert!(text.parse::<GameId>().is_err(), "{text:?} parsed");
            }
        }
        assert!(
            "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f6é"
                .parse::<GameId>()
                .is_err()
        );
    }
}
