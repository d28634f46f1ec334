//! What a report refuses: output beyond a bound, and the error every refusal is.

use crate::Error;

/// The error of a report that cannot be made (bad options, a bound reached).
pub(super) fn invalid(reason: impl Into<String>) -> Error {
    Error::Report {
        reason: reason.into(),
    }
}

/// The largest output a report makes (`folded`, `text`, the flame graph's SVG): beyond it
/// the report is an error naming the bound, before the memory is spent (before: a 29 KB
/// file of 3 samples × 10 M frames made a 1.93 GB SVG in 2.78 GB of memory).
pub const MAX_OUTPUT_BYTES: usize = 256 << 20;

pub(super) fn output_too_large(what: &str) -> Error {
    invalid(format!(
        "the {what} would be larger than {} MiB (stacks too deep or names too long; narrow it with --focus/--ignore)",
        MAX_OUTPUT_BYTES >> 20
    ))
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
pub(super) struct Bounded<'a> {
    pub(super) out: &'a mut Vec<u8>,
    /// A write was refused.
    pub(super) hit: bool,
}

impl std::io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.hit = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "output bound",
            ));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
