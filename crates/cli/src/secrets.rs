//! Secrets kept secret: the database password's file is checked before anything connects, and
//! a file holding a secret that other users may read is worth a warning.

use std::path::Path;

use crate::BadInput;
use crate::settings::Settings;

/// Checks the secrets of `settings`: the password file must give a password (bad input
/// otherwise, naming the file, never its content); the password file, and the configuration
/// file `config_file` when it holds a password (`config_holds_secret`), each earn a warning in
/// `settings.warnings` when users other than the owner may read them.
pub fn check(
    settings: &mut Settings,
    config_file: Option<&Path>,
    config_holds_secret: bool,
) -> Result<(), BadInput> {
    settings.store.password().map_err(|e| {
        BadInput(format!(
            "database password file: {}",
            crate::settings::one_line(&e.to_string())
        ))
    })?;
    if let Some(path) = settings.store.password_file.clone()
        && let Some(warning) = readable_by_others(&path, "the database password file")
    {
        settings.warnings.push(warning);
    }
    if let Some(path) = config_file
        && config_holds_secret
        && let Some(warning) = readable_by_others(
            path,
            "the configuration file (it holds the database password)",
        )
    {
        settings.warnings.push(warning);
    }
    Ok(())
}

/// A warning when users other than the owner may read `path`.
#[cfg(unix)]
fn readable_by_others(path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then(|| {
        format!(
            "{what} {} may be read by other users (mode {mode:03o}): `chmod 600` it",
            galaxy_runtime_model::text::escape_foreign(
                &path.display().to_string(),
                galaxy_runtime_model::text::MESSAGE_CHARS
            )
        )
    })
}

/// Permissions are not checked where they are not Unix modes.
#[cfg(not(unix))]
fn readable_by_others(_path: &Path, _what: &str) -> Option<String> {
    None
}
