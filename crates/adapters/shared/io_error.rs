//! The first I/O error among an error and its causes, for the adapters that reach a service over
//! a socket (Docker, the engine's HTTP): the operating system's words ("Connection refused", "No
//! such file or directory") say what happened; the wrappers of HTTP clients around them do not.
//!
//! Adapters do not depend on each other, so each of those crates includes this one file as a
//! private module (`#[path]`). Its lasting home is beside `error_chain` in
//! `galaxy-runtime-ports`; when it moves there, this file goes.

use std::error::Error;
use std::io;

/// The first [`io::Error`] among `error` and its causes.
pub(crate) fn io_error_in_chain<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a io::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    /// An error that says little and keeps its cause, as hyper's do.
    #[derive(Debug)]
    struct Wrapper(Box<dyn Error + Send + Sync>);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn finds_the_io_error_at_any_depth() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        let found = |error: &(dyn Error + 'static)| io_error_in_chain(error).map(io::Error::kind);
        assert_eq!(found(&refused()), Some(io::ErrorKind::ConnectionRefused));
        let wrapped = Wrapper(Box::new(Wrapper(Box::new(refused()))));
        assert_eq!(found(&wrapped), Some(io::ErrorKind::ConnectionRefused));
        assert_eq!(found(&Wrapper("no socket involved".into())), None);
    }
}
