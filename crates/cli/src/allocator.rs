//! The process's allocator, and how it is tuned.
//!
//! A pass allocates each container, record and probe answer of the fleet in small pieces, and
//! its planner then walks them all: on glibc's allocator those pieces lie scattered and each
//! reach is a cache miss, on mimalloc's size-class pages they lie close. Measured at 100k games
//! (`docs/performance.md` §10): a quick pass alone 60 ms instead of 85, its planning 45 ms
//! instead of 65. A backend that embeds the library chooses its own.
//!
//! The reconciler's `_mimalloc` benches include this very file (`#[path]`), so that they
//! measure the allocator as the tool tunes it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option, by its place in `mi_option_t` (`mimalloc.h` of the pinned
/// `libmimalloc-sys`, which exposes no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable that, when set, decides `purge_delay` instead (mimalloc reads it).
const PURGE_DELAY_VARIABLE: &str = "MIMALLOC_PURGE_DELAY";

/// Keeps the pages a pass frees for the next pass, unless `MIMALLOC_PURGE_DELAY` says
/// otherwise. By default mimalloc hands them back to the system a second after they are freed,
/// and the next pass faults every one of them in again: at 100k games the reaction to a
/// removal took 30 ms longer so (`docs/performance.md` §10). glibc's allocator mostly keeps
/// them too; the process's memory stays at what its largest pass needs.
///
/// Call it first in `main`, before any other thread exists.
#[allow(unsafe_code)] // a call into the allocator's C API; nothing else in the tool is unsafe
pub fn keep_freed_pages() {
    if std::env::var_os(PURGE_DELAY_VARIABLE).is_none() {
        // SAFETY: `mi_option_set` is not thread safe; the caller runs it before any other
        // thread exists, and -1 is the option's documented "never purge".
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    /// The option set by number is `purge_delay`: before it is set it holds `purge_delay`'s
    /// default (1000 ms in the pinned mimalloc, no other option's) or the number the
    /// environment gives, and afterwards "never" unless the environment decides.
    #[test]
    #[allow(unsafe_code)] // reads the allocator's options through its C API
    fn the_allocator_keeps_freed_pages() {
        // Imported here, not for the module: the benches that include this file are built
        // with `cfg(test)` by `clippy --all-targets` but without their `#[test]` functions.
        use super::{MI_OPTION_PURGE_DELAY, PURGE_DELAY_VARIABLE, keep_freed_pages};
        let from_env: Option<std::ffi::c_long> =
            std::env::var(PURGE_DELAY_VARIABLE).ok().map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{PURGE_DELAY_VARIABLE}={v:?} is not a number"))
            });
        // SAFETY: `mi_option_get` only reads the option (racing only with `mi_option_set`,
        // which no other test calls).
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            before,
            from_env.unwrap_or(1000),
            "option {MI_OPTION_PURGE_DELAY} is not purge_delay"
        );
        keep_freed_pages();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, from_env.unwrap_or(-1));
    }
}
