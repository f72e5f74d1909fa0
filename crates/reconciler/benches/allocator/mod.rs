//! mimalloc as the bench process's allocator, tuned as the command-line tool tunes it
//! (`keep_freed_pages` in `crates/cli/src/main.rs`, `docs/performance.md` §10), so that the
//! `_mimalloc` benches measure what the tool runs.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option, by its place in `mi_option_t` of the pinned
/// `libmimalloc-sys` (the command-line tool's test checks the number).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed pages for the next pass unless `MIMALLOC_PURGE_DELAY` says otherwise.
#[allow(unsafe_code)] // a call into the allocator's C API
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called first in `main`, before the bench starts any other thread; -1 is the
        // option's documented "never purge".
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}
