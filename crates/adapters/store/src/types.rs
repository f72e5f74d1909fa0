//! Values of the portable SQL types, with their `ToSql`/`FromSql` impls for each backend.
//!
//! Reading never fails: a value the code cannot understand (bad UUID text, a timestamp that is
//! not RFC 3339, JSON that does not parse — possible in SQLite, whose columns accept any text)
//! is kept as `Malformed` with its raw text, so that the row converter can report it as
//! [`PortError::Invalid`](galaxy_runtime_ports::PortError::Invalid) naming the game and the
//! value, instead of diesel failing the whole query with an anonymous deserialisation error.

use std::fmt;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, ToSql};
use galaxy_runtime_model::{GameId, Timestamp};
use uuid::Uuid;

use crate::schema::sql_types::{PortableJson, PortableTimestamp, PortableUuid};

/// A game id as stored.
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = PortableUuid)]
pub(crate) enum DbUuid {
    /// A well-formed UUID.
    Valid(Uuid),
    /// Stored text that is not a hyphenated UUID.
    Malformed(String),
}

impl From<GameId> for DbUuid {
    fn from(id: GameId) -> Self {
        Self::Valid(*id.as_uuid())
    }
}

impl From<galaxy_runtime_model::EventId> for DbUuid {
    fn from(id: galaxy_runtime_model::EventId) -> Self {
        Self::Valid(*id.as_uuid())
    }
}

impl DbUuid {
    /// The game id, or the raw stored text.
    pub(crate) fn game_id(&self) -> Result<GameId, &str> {
        match self {
            Self::Valid(uuid) => Ok(GameId::from_uuid(*uuid)),
            Self::Malformed(raw) => Err(raw),
        }
    }
}

impl fmt::Display for DbUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid(uuid) => fmt::Display::fmt(&uuid.hyphenated(), f),
            Self::Malformed(raw) => write!(f, "{raw:?}"),
        }
    }
}

/// A timestamp as stored.
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = PortableTimestamp)]
pub(crate) enum DbTime {
    /// A representable point in time.
    Valid(Timestamp),
    /// A stored value that is not one (bad text in SQLite, `infinity` in PostgreSQL).
    Malformed(String),
}

impl From<Timestamp> for DbTime {
    fn from(at: Timestamp) -> Self {
        Self::Valid(at)
    }
}

/// The SQLite text of a timestamp: fixed width, so that text order is time order.
#[cfg(feature = "sqlite")]
fn timestamp_text(at: &Timestamp) -> String {
    at.as_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A JSON document as stored.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = PortableJson)]
pub(crate) enum DbJson {
    /// A parsed document, shared: a snapshot's JSON comes from the engine's answer and goes to
    /// the row and to its bind without a copy.
    Valid(std::sync::Arc<serde_json::Value>),
    /// Stored text that is not JSON.
    Malformed(String),
}

fn malformed_write(what: &str, raw: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("refusing to write the malformed {what} {raw:?}").into()
}

#[cfg(feature = "postgres")]
mod pg {
    use std::io::Write;

    use diesel::pg::{Pg, PgValue};
    use diesel::serialize::{IsNull, Output};

    use super::*;

    /// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
    const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

    impl ToSql<PortableUuid, Pg> for DbUuid {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            match self {
                Self::Valid(uuid) => {
                    out.write_all(uuid.as_bytes())?;
                    Ok(IsNull::No)
                }
                Self::Malformed(raw) => Err(malformed_write("game id", raw)),
            }
        }
    }

    impl FromSql<PortableUuid, Pg> for DbUuid {
        fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
            let bytes = value.as_bytes();
            Ok(match Uuid::from_slice(bytes) {
                Ok(uuid) => Self::Valid(uuid),
                Err(_) => Self::Malformed(format!("{bytes:02x?}")),
            })
        }
    }

    impl ToSql<PortableTimestamp, Pg> for DbTime {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            match self {
                Self::Valid(at) => {
                    let micros = at.unix_micros().saturating_sub(PG_EPOCH_UNIX_MICROS);
                    out.write_all(&micros.to_be_bytes())?;
                    Ok(IsNull::No)
                }
                Self::Malformed(raw) => Err(malformed_write("timestamp", raw)),
            }
        }
    }

    impl FromSql<PortableTimestamp, Pg> for DbTime {
        fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
            let bytes = value.as_bytes();
            let Ok(raw) = <[u8; 8]>::try_from(bytes) else {
                return Ok(Self::Malformed(format!("{bytes:02x?}")));
            };
            let micros = i64::from_be_bytes(raw);
            // ±infinity are i64::MAX / i64::MIN; they and anything chrono cannot hold are malformed.
            Ok(micros
                .checked_add(PG_EPOCH_UNIX_MICROS)
                .and_then(Timestamp::from_unix_micros)
                .map_or_else(
                    || {
                        Self::Malformed(match micros {
                            i64::MAX => "infinity".to_owned(),
                            i64::MIN => "-infinity".to_owned(),
                            _ => format!("{micros} microseconds after 2000-01-01"),
                        })
                    },
                    Self::Valid,
                ))
        }
    }

    /// The first byte of jsonb's binary form: its format version.
    const JSONB_VERSION: u8 = 1;

    impl ToSql<PortableJson, Pg> for DbJson {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            match self {
                Self::Valid(value) => {
                    out.write_all(&[JSONB_VERSION])?;
                    serde_json::to_writer(out, value)?;
                    Ok(IsNull::No)
                }
                Self::Malformed(raw) => Err(malformed_write("JSON", raw)),
            }
        }
    }

    impl FromSql<PortableJson, Pg> for DbJson {
        fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
            let bytes = value.as_bytes();
            Ok(match bytes.split_first() {
                Some((&JSONB_VERSION, text)) => match serde_json::from_slice(text) {
                    Ok(value) => Self::Valid(std::sync::Arc::new(value)),
                    Err(_) => Self::Malformed(String::from_utf8_lossy(text).into_owned()),
                },
                _ => Self::Malformed(String::from_utf8_lossy(bytes).into_owned()),
            })
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use diesel::serialize::{IsNull, Output};
    use diesel::sql_types::Text;
    use diesel::sqlite::{Sqlite, SqliteValue};

    use super::*;

    fn text(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<String> {
        <String as FromSql<Text, Sqlite>>::from_sql(value)
    }

    impl ToSql<PortableUuid, Sqlite> for DbUuid {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            match self {
                Self::Valid(uuid) => {
                    out.set_value(uuid.hyphenated().to_string());
                    Ok(IsNull::No)
                }
                Self::Malformed(raw) => Err(malformed_write("game id", raw)),
            }
        }
    }

    impl FromSql<PortableUuid, Sqlite> for DbUuid {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let raw = text(value)?;
            // Only the hyphenated form is ours; GameId's parser is that strict.
            Ok(match raw.parse::<GameId>() {
                Ok(id) => Self::Valid(*id.as_uuid()),
                Err(_) => Self::Malformed(raw),
            })
        }
    }

    impl ToSql<PortableTimestamp, Sqlite> for DbTime {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            match self {
                Self::Valid(at) => {
                    out.set_value(timestamp_text(at));
                    Ok(IsNull::No)
                }
                Self::Malformed(raw) => Err(malformed_write("timestamp", raw)),
            }
        }
    }

    impl FromSql<PortableTimestamp, Sqlite> for DbTime {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let raw = text(value)?;
            Ok(match raw.parse::<Timestamp>() {
                Ok(at) => Self::Valid(at),
                Err(_) => Self::Malformed(raw),
            })
        }
    }

    impl ToSql<PortableJson, Sqlite> for DbJson {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            match self {
                Self::Valid(value) => {
                    out.set_value(serde_json::to_string(value)?);
                    Ok(IsNull::No)
                }
                Self::Malformed(raw) => Err(malformed_write("JSON", raw)),
            }
        }
    }

    impl FromSql<PortableJson, Sqlite> for DbJson {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let raw = text(value)?;
            Ok(match serde_json::from_str(&raw) {
                Ok(value) => Self::Valid(std::sync::Arc::new(value)),
                Err(_) => Self::Malformed(raw),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_timestamp_text_is_fixed_width_and_round_trips() {
        let at: Timestamp = "2026-11-27T12:00:00Z".parse().unwrap();
        assert_eq!(timestamp_text(&at), "2026-11-27T12:00:00.000000Z");
        let at: Timestamp = "2026-11-27T12:00:00.123456Z".parse().unwrap();
        let text = timestamp_text(&at);
        assert_eq!(text, "2026-11-27T12:00:00.123456Z");
        assert_eq!(text.parse::<Timestamp>().unwrap(), at);
    }

    #[test]
    fn malformed_uuid_displays_its_raw_text() {
        let bad = DbUuid::Malformed("not-a-uuid".to_owned());
        assert_eq!(bad.to_string(), "\"not-a-uuid\"");
        assert_eq!(bad.game_id(), Err("not-a-uuid"));
        let id = GameId::new_random();
        assert_eq!(DbUuid::from(id).game_id(), Ok(id));
    }
}
