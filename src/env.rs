//! `profile::from_env()`: profiling chosen by an environment variable, so a build can be
//! profiled without changing its code again.

use crate::builder::sealed::ModeImpl;
use crate::kind::{self, ProfileKind};
use crate::{Builder, Error, Guard};

/// The variable [`from_env`] reads.
pub const ENV_VAR: &str = "PROFILE";

/// Starts the profile that `PROFILE` names, if it names one; returns its guard.
///
/// The value is `MODE[,option...]`: a mode (`cpu`, `mem` or `heap`, `allocs`, `mutex`,
/// `block`, `threads` or `goroutine`, `clock`, and `threadcreate` and `trace` with those
/// features), then options: `path=DIR`, `file=FILE`, `rate=BYTES` (mem, allocs), `hz=N`
/// (cpu, clock; CPU samples of a trace),
/// `quiet`, `no_shutdown_hook`. Unset, empty, `off`, `none` or `0`: no profiling,
/// `Ok(None)`.
///
/// ```no_run
/// // PROFILE=cpu,path=./profiles ./my-program
/// fn main() -> Result<(), profile::Error> {
///     let _guard = profile::from_env()?;
///     // ... the program ...
///     Ok(())
/// }
/// ```
///
/// With the `push` feature, `PROFILE_PUSH=URL` (and the variables
/// `crate::push::from_env` lists) also starts continuous profiling to that
/// Pyroscope server, kept for the rest of the process: flushed when it exits (`main`
/// returns, `std::process::exit`) and on SIGINT/SIGTERM.
///
/// Errors: [`Error::InvalidEnv`] naming the variable and the syntax when the value does
/// not parse; what [`Builder::build`] returns otherwise.
pub fn from_env() -> Result<Option<Guard>, Error> {
    let guard = guard_from_env()?;
    #[cfg(feature = "push")]
    crate::push::start_from_env_for_process()?;
    Ok(guard)
}

fn guard_from_env() -> Result<Option<Guard>, Error> {
    match std::env::var(ENV_VAR) {
        Ok(value) => from_value(&value),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => {
            Err(invalid(&v.to_string_lossy(), "not valid UTF-8".into()))
        }
    }
}

fn invalid(value: &str, reason: String) -> Error {
    Error::InvalidEnv {
        variable: ENV_VAR,
        value: value.to_owned(),
        reason,
        modes: kind::names_for_messages(),
    }
}

/// Options common to every mode.
#[derive(Default)]
struct Common {
    path: Option<String>,
    file: Option<String>,
    quiet: bool,
    no_hook: bool,
}

fn finish<M: ModeImpl>(b: Builder<M>, c: &Common) -> Result<Guard, Error> {
    let mut b = b;
    if let Some(p) = &c.path {
        b = b.path(p);
    }
    if let Some(f) = &c.file {
        b = b.file(f);
    }
    if c.quiet {
        b = b.quiet();
    }
    if c.no_hook {
        b = b.no_shutdown_hook();
    }
    b.build()
}

pub(crate) fn from_value(value: &str) -> Result<Option<Guard>, Error> {
    let trimmed = value.trim();
    if matches!(trimmed, "" | "off" | "none" | "0") {
        return Ok(None);
    }
    let mut items = trimmed.split(',').map(str::trim);
    let mode = items.next().unwrap_or_default();
    let mut common = Common::default();
    let (mut rate, mut hz) = (None, None);
    for item in items {
        let (key, val) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item, None),
        };
        let number = |what: &str| -> Result<u64, Error> {
            val.and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| {
                invalid(
                    value,
                    format!("{what} needs a whole number, as in {what}=100"),
                )
            })
        };
        let text = |what: &str| -> Result<String, Error> {
            match val {
                Some(v) if !v.is_empty() => Ok(v.to_owned()),
                _ => Err(invalid(
                    value,
                    format!("{what} needs a value, as in {what}=./profiles"),
                )),
            }
        };
        match (key, val) {
            ("path", _) => common.path = Some(text("path")?),
            ("file", _) => common.file = Some(text("file")?),
            ("rate", _) => rate = Some(number("rate")?),
            ("hz" | "frequency", _) => hz = Some(number("hz")?),
            ("quiet", None) => common.quiet = true,
            ("no_shutdown_hook", None) => common.no_hook = true,
            _ => return Err(invalid(value, format!("unknown option {item:?}"))),
        }
    }
    let Some(k) = kind::find(mode) else {
        return Err(invalid(value, format!("unknown mode {mode:?}")));
    };
    if !k.available {
        let feature = k.feature.unwrap_or_default();
        return Err(invalid(
            value,
            format!("{mode} needs the crate's `{feature}` feature"),
        ));
    }
    for (option, set) in [("rate", rate.is_some()), ("hz", hz.is_some())] {
        if set && !k.options.contains(&option) {
            let modes = kind::taking_option(option);
            return Err(invalid(value, format!("{option} applies to {modes} only")));
        }
    }
    let hz = hz.map(|hz| u32::try_from(hz).unwrap_or(u32::MAX));
    let b = crate::start();
    let guard = match k.kind {
        ProfileKind::Cpu => {
            let mut m = b.cpu();
            if let Some(hz) = hz {
                m = m.frequency(hz);
            }
            finish(m, &common)
        }
        ProfileKind::Heap | ProfileKind::Allocs => {
            let mut m = if k.kind == ProfileKind::Allocs {
                b.allocs()
            } else {
                b.mem()
            };
            if let Some(rate) = rate {
                m = m.rate(usize::try_from(rate).unwrap_or(usize::MAX));
            }
            finish(m, &common)
        }
        ProfileKind::Clock => {
            let mut m = b.clock();
            if let Some(hz) = hz {
                m = m.frequency(hz);
            }
            finish(m, &common)
        }
        ProfileKind::Mutex => finish(b.mutex(), &common),
        ProfileKind::Block => finish(b.block(), &common),
        ProfileKind::Threads => finish(b.threads(), &common),
        #[cfg(feature = "threadcreate")]
        ProfileKind::ThreadCreate => finish(b.threadcreate(), &common),
        #[cfg(feature = "trace")]
        ProfileKind::Trace => {
            let mut m = b.trace();
            if let Some(hz) = hz {
                m = m.cpu_samples(hz);
            }
            finish(m, &common)
        }
        // Kinds this build does not have were refused above (`available`).
        #[allow(unreachable_patterns)]
        _ => return Err(invalid(value, format!("{mode} has no mode in this build"))),
    };
    match guard {
        // A setting from the variable that the builder refused: say which variable.
        Err(e @ Error::InvalidFrequency { .. }) => {
            let reason = e.to_string();
            Err(invalid(
                value,
                reason
                    .strip_prefix("profile: ")
                    .unwrap_or(&reason)
                    .to_owned(),
            ))
        }
        other => other.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(value: &str) -> String {
        from_value(value).unwrap_err().to_string()
    }

    #[test]
    fn off_values_start_nothing() {
        for v in ["", " ", "off", "none", "0"] {
            assert!(from_value(v).unwrap().is_none(), "{v:?}");
        }
    }

    #[test]
    fn malformed_values_name_the_variable_and_the_syntax() {
        for (v, says) in [
            ("cpux", "unknown mode \"cpux\""),
            ("cpu,rate=5", "rate applies to mem and allocs only"),
            ("mem,hz=5", "hz applies to cpu, clock and trace only"),
            ("cpu,hz=fast", "hz needs a whole number"),
            ("cpu,path=", "path needs a value"),
            ("cpu,colour=red", "unknown option \"colour=red\""),
            ("cpu,quiet=yes", "unknown option \"quiet=yes\""),
            ("cpu,hz=0", "invalid CPU sampling frequency 0 Hz"),
            (
                "clock,hz=100000",
                "invalid wall-clock sampling frequency 100000 Hz",
            ),
        ] {
            let e = err(v);
            assert!(e.contains("PROFILE="), "{e}");
            assert!(e.contains(says), "{v}: {e}");
            assert!(e.contains("expected MODE[,option...]"), "{e}");
        }
    }
}
