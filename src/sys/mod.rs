//! Platform backends, chosen once here. Linux has the real ones; every other platform
//! gets stubs that compile and return [`crate::Error::Unsupported`].

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "unsupported.rs"]
mod imp;

pub(crate) use imp::*;

pub(crate) mod symbolization;

// Type-check the stubs on Linux too, so a change that breaks other platforms fails here.
#[cfg(all(test, target_os = "linux"))]
#[path = "unsupported.rs"]
#[allow(dead_code)]
mod unsupported_check;
