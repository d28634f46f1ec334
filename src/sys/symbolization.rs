//! Whether profiles written from now on get function names, files and lines (the
//! symbolizer's mode): set by `runtime::symbols::set`, else `PROFILE_SYMBOLIZE`. Kept here,
//! beside the symbolizer that reads it, for every platform.

use std::sync::atomic::{AtomicU8, Ordering};

const UNSET: u8 = 0;
const FULL: u8 = 1;
const OFF: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNSET);

/// Sets the mode: `true` names addresses (functions, files, lines), `false` writes
/// addresses, mappings and build IDs only.
pub(crate) fn set(functions: bool) {
    MODE.store(if functions { FULL } else { OFF }, Ordering::Relaxed);
}

/// The mode: what [`set`] chose, else `PROFILE_SYMBOLIZE` (`off`, `none`, `0` or `false`
/// for no functions), else functions.
pub(crate) fn functions() -> bool {
    let mode = match MODE.load(Ordering::Relaxed) {
        UNSET => {
            let off = std::env::var("PROFILE_SYMBOLIZE").is_ok_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "off" | "none" | "0" | "false"
                )
            });
            // A `set` meanwhile wins.
            let _ = MODE.compare_exchange(
                UNSET,
                if off { OFF } else { FULL },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            MODE.load(Ordering::Relaxed)
        }
        m => m,
    };
    mode != OFF
}
