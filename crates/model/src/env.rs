//! Settings from the environment and from text, for any serde configuration struct: the
//! reconciler's [`Config`](crate::Config) and each adapter's own.
//!
//! A field is set from its text form through the struct's serde form, so that a value from an
//! environment variable, a file or a flag is checked exactly as JSON input is: the text becomes
//! a JSON number where the field is a number, `true`/`false` where it is a boolean, a list where
//! it is a list (`removed,stopped` or a JSON array), nothing where it is optional and the text is
//! empty, and a string otherwise. A refused value is a [`ConfigError`] naming the variable (or
//! field) and the value, and changes nothing.
//!
//! ```
//! use galaxy_runtime_model::{Config, env};
//!
//! let mut config = Config::default();
//! let lookup = env::lookup_from(&[("BACKEND_RUNTIME_FAILURE_THRESHOLD", "5")]);
//! env::apply_env(&mut config, |field| Some(env::var_name(env::PREFIX, field)), lookup).unwrap();
//! assert_eq!(config.failure_threshold.get(), 5);
//!
//! let error = env::set_field(&mut config, "probe_timeout", "soon", "probe_timeout").unwrap_err();
//! assert_eq!(error.name, "probe_timeout");
//! assert_eq!(config.failure_threshold.get(), 5, "a refused value changes nothing");
//! ```

use std::collections::HashMap;
use std::ffi::OsString;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ConfigError;

/// The prefix of every environment variable of galaxy-runtime: a field `failure_threshold` of
/// the configuration is `BACKEND_RUNTIME_FAILURE_THRESHOLD`.
pub const PREFIX: &str = "BACKEND_RUNTIME_";

/// The variable of a field: `prefix` followed by the field in upper case
/// (`BACKEND_RUNTIME_DATABASE_` and `max_connections` give
/// `BACKEND_RUNTIME_DATABASE_MAX_CONNECTIONS`).
pub fn var_name(prefix: &str, field: &str) -> String {
    format!("{prefix}{}", field.to_ascii_uppercase())
}

/// The names of the fields of `value` as it serialises, in declaration order; none when it does
/// not serialise to an object.
pub fn field_names<T: Serialize>(value: &T) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The text of the variable `name`, `None` when it is not set; a value that is not UTF-8 is
/// refused.
pub fn var_text(
    lookup: impl Fn(&str) -> Option<OsString>,
    name: &str,
) -> Result<Option<String>, ConfigError> {
    lookup(name)
        .map(|raw| {
            raw.into_string().map_err(|raw| ConfigError {
                name: name.to_owned(),
                value: raw.to_string_lossy().into_owned(),
                reason: "not valid UTF-8".to_owned(),
            })
        })
        .transpose()
}

/// Overrides every field of `value` whose variable is set: `var` gives a field's variable
/// (`None` for a field the environment does not set), `lookup` the environment.
///
/// Variables `var` does not name are left alone: adapters and the host may use the same prefix
/// for their own settings. Either every variable is applied or, on the first refused one,
/// nothing is.
pub fn apply_env<T: Serialize + DeserializeOwned>(
    value: &mut T,
    var: impl Fn(&str) -> Option<String>,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<(), ConfigError> {
    let mut fields = object(value, "environment")?;
    let mut changed = false;
    let names: Vec<String> = fields.keys().cloned().collect();
    for field in names {
        let Some(name) = var(&field) else { continue };
        let Some(text) = var_text(&lookup, &name)? else {
            continue;
        };
        set_in::<T>(&mut fields, &field, &text, &name)?;
        changed = true;
    }
    if changed {
        *value = parse(fields, "environment", "")?;
    }
    Ok(())
}

/// Sets the field `field` of `value` from its text form (`"30s"`, `"3"`, `"container_ip"`),
/// checked exactly as JSON input is; `name` is how a refusal names the value (the field, a
/// variable, `section.field` of a file).
pub fn set_field<T: Serialize + DeserializeOwned>(
    value: &mut T,
    field: &str,
    text: &str,
    name: &str,
) -> Result<(), ConfigError> {
    let mut fields = object(value, name)?;
    set_in::<T>(&mut fields, field, text, name)?;
    *value = parse(fields, name, text)?;
    Ok(())
}

/// A lookup function over fixed pairs, for tests and for hosts that keep their environment
/// elsewhere.
pub fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, OsString> = pairs
        .iter()
        .map(|&(name, value)| (name.to_owned(), OsString::from(value)))
        .collect();
    move |name| map.get(name).cloned()
}

fn refusal(name: &str, text: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        value: text.to_owned(),
        reason: reason.into(),
    }
}

fn object<T: Serialize>(value: &T, name: &str) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(refusal(name, "", "the configuration is not a struct")),
        Err(e) => Err(refusal(name, "", e.to_string())),
    }
}

fn parse<T: DeserializeOwned>(
    fields: Map<String, Value>,
    name: &str,
    text: &str,
) -> Result<T, ConfigError> {
    serde_json::from_value(Value::Object(fields)).map_err(|e| refusal(name, text, e.to_string()))
}

/// Replaces the field in `fields` by the first reading of `text` that `T` accepts.
fn set_in<T: DeserializeOwned>(
    fields: &mut Map<String, Value>,
    field: &str,
    text: &str,
    name: &str,
) -> Result<(), ConfigError> {
    let Some(current) = fields.get(field) else {
        return Err(refusal(
            name,
            text,
            format!("unknown configuration field {field:?}"),
        ));
    };
    let typed = readings(current, text);
    let mut first_error = typed.as_ref().err().map(|reason| (*reason).to_owned());
    // An empty text clears an optional field, whatever its type.
    let clear = text.is_empty().then_some(Value::Null);
    let candidates = clear.into_iter().chain(typed.unwrap_or_default());
    for candidate in candidates {
        let mut trial = fields.clone();
        trial.insert(field.to_owned(), candidate.clone());
        match serde_json::from_value::<T>(Value::Object(trial)) {
            Ok(_) => {
                fields.insert(field.to_owned(), candidate);
                return Ok(());
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Err(refusal(name, text, first_error.unwrap_or_default()))
}

/// The JSON values `text` may stand for, given the field's current value, in the order tried.
fn readings(current: &Value, text: &str) -> Result<Vec<Value>, &'static str> {
    let number = || {
        text.trim()
            .parse::<serde_json::Number>()
            .ok()
            .map(Value::Number)
    };
    let boolean = || match text.trim() {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => None,
    };
    let string = || Value::String(text.to_owned());
    Ok(match current {
        Value::Number(_) => vec![number().ok_or("expected a number")?],
        Value::Bool(_) => vec![boolean().ok_or("expected true or false")?],
        Value::Array(_) => vec![list(text)],
        Value::Null => number()
            .into_iter()
            .chain(boolean())
            .chain([string()])
            .collect(),
        Value::String(_) | Value::Object(_) => vec![string()],
    })
}

/// A list written as a JSON array, or as words separated by commas (`removed, stopped`).
fn list(text: &str) -> Value {
    if let Ok(array @ Value::Array(_)) = serde_json::from_str(text) {
        return array;
    }
    Value::Array(
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    /// A struct with every kind of field the readings cover.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        name: String,
        count: u32,
        enabled: bool,
        #[serde(with = "crate::duration")]
        wait: Duration,
        schema: Option<String>,
        limit: Option<u32>,
        words: Vec<String>,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                name: "x".to_owned(),
                count: 1,
                enabled: false,
                wait: Duration::from_secs(1),
                schema: None,
                limit: None,
                words: vec!["a".to_owned()],
            }
        }
    }

    fn set(field: &str, text: &str) -> Result<Sample, ConfigError> {
        let mut sample = Sample::default();
        set_field(&mut sample, field, text, field)?;
        Ok(sample)
    }

    #[test]
    fn each_kind_of_field_reads_its_text() {
        assert_eq!(set("name", "y").unwrap().name, "y");
        assert_eq!(set("count", " 7 ").unwrap().count, 7);
        assert!(set("enabled", "true").unwrap().enabled);
        assert_eq!(set("wait", "2m").unwrap().wait, Duration::from_secs(120));
        assert_eq!(
            set("schema", "runtime").unwrap().schema.as_deref(),
            Some("runtime")
        );
        assert_eq!(set("limit", "5").unwrap().limit, Some(5));
        assert_eq!(set("words", "b, c").unwrap().words, ["b", "c"]);
        assert_eq!(set("words", r#"["d"]"#).unwrap().words, ["d"]);
        assert!(set("words", "").unwrap().words.is_empty());
    }

    #[test]
    fn an_empty_text_clears_an_optional_field() {
        let mut sample = Sample {
            schema: Some("runtime".to_owned()),
            ..Sample::default()
        };
        set_field(&mut sample, "schema", "", "schema").unwrap();
        assert_eq!(sample.schema, None);
        assert_eq!(set("name", "").unwrap().name, "");
    }

    #[test]
    fn refusals_name_the_value_and_change_nothing() {
        let err = set("count", "many").unwrap_err();
        assert_eq!(
            (err.name.as_str(), err.value.as_str(), err.reason.as_str()),
            ("count", "many", "expected a number")
        );
        assert_eq!(
            set("enabled", "yes").unwrap_err().reason,
            "expected true or false"
        );
        assert!(set("count", "-1").is_err());
        assert!(
            set("wait", "soon")
                .unwrap_err()
                .reason
                .contains("invalid duration")
        );
        assert!(
            set("colour", "red")
                .unwrap_err()
                .reason
                .contains("unknown configuration field \"colour\"")
        );
    }

    #[test]
    fn the_environment_is_applied_whole_or_not_at_all() {
        let var = |field: &str| (field != "name").then(|| var_name("SAMPLE_", field));
        let mut sample = Sample::default();
        apply_env(
            &mut sample,
            var,
            lookup_from(&[
                ("SAMPLE_COUNT", "3"),
                ("SAMPLE_WAIT", "500ms"),
                ("SAMPLE_NAME", "not read"),
                ("OTHER_COUNT", "9"),
            ]),
        )
        .unwrap();
        assert_eq!(sample.count, 3);
        assert_eq!(sample.wait, Duration::from_millis(500));
        assert_eq!(sample.name, "x", "a field without a variable is left alone");

        let before = sample.clone();
        let err = apply_env(
            &mut sample,
            var,
            lookup_from(&[("SAMPLE_COUNT", "4"), ("SAMPLE_WAIT", "later")]),
        )
        .unwrap_err();
        assert_eq!(err.name, "SAMPLE_WAIT");
        assert_eq!(sample, before, "a refused variable changed the struct");
    }

    #[test]
    #[cfg(unix)]
    fn a_value_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStringExt;

        let lookup = |_: &str| Some(OsString::from_vec(vec![0xff]));
        let err = var_text(lookup, "SAMPLE_NAME").unwrap_err();
        assert_eq!(err.name, "SAMPLE_NAME");
        assert_eq!(err.reason, "not valid UTF-8");
        assert_eq!(var_text(|_: &str| None, "SAMPLE_NAME"), Ok(None));
    }

    #[test]
    fn field_names_follow_the_declaration() {
        assert_eq!(
            field_names(&Sample::default()),
            [
                "name", "count", "enabled", "wait", "schema", "limit", "words"
            ]
        );
    }
}
