//! Allocator settings of the joiner process.
//!
//! A joiner batch allocates and frees up to hundreds of MiB (records, rows, encoded inserts)
//! every few hundred milliseconds. With mimalloc's defaults, freed memory went back to the OS
//! after 1 s and came back as fresh pages, which the kernel zeroes on first touch, 2 MiB at a
//! time under transparent huge pages: page faults and `clear_page` were 15–22 % of the joiner's
//! CPU (BENCHMARKS.md). Keeping the memory and using small pages avoids both; the cost is an RSS
//! that stays at its peak (the joiner's is bounded by `batch_max_rows`).

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// `mi_option_purge_delay` of mimalloc v3's `mi_option_e` (`mimalloc.h`): milliseconds before
/// freed memory is returned to the OS, -1 for never. The bindings name no v3-only option.
const PURGE_DELAY: mi_option_t = 15;
/// `mi_option_allow_thp`: whether new arenas are advised for transparent huge pages.
const ALLOW_THP: mi_option_t = 43;

/// Keeps freed memory for the next batch and turns transparent huge pages off.
pub fn keep_memory_without_huge_pages() {
    // SAFETY: plain setters of mimalloc's global options, valid at any time.
    unsafe {
        mi_option_set(PURGE_DELAY, -1);
        mi_option_set(ALLOW_THP, 0);
    }
    // The arena mimalloc reserved before `main` was advised for huge pages already; this
    // applies to every mapping of the process, old and new.
    // SAFETY: prctl with integer arguments only.
    let disabled = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if disabled != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot turn transparent huge pages off");
    }
}

#[cfg(test)]
mod tests {
    use std::os::raw::c_long;

    use libmimalloc_sys::mi_option_get;

    use super::*;

    fn option(option: mi_option_t) -> c_long {
        // SAFETY: a plain getter of mimalloc's global options.
        unsafe { mi_option_get(option) }
    }

    #[test]
    fn the_option_numbers_name_purge_delay_and_allow_thp() {
        // mimalloc v3's defaults: a numbering change would read another option.
        assert_eq!(option(PURGE_DELAY), 1000);
        assert_eq!(option(ALLOW_THP), 1);
    }
}
