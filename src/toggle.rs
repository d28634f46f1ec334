//! Start and stop profiling at any moment: from a signal (`kill -USR1 PID`), from your own
//! code (an admin endpoint), or from the environment (`PROFILE=cpu`).
//!
//! ```no_run
//! # fn serve() {}
//! // Each SIGUSR1 starts a CPU profile; the next one writes it: cpu-1.pb.gz, cpu-2.pb.gz...
//! let toggle = profile::toggle::on_signal(profile::toggle::SIGUSR1, || {
//!     profile::start().path("./profiles").cpu()
//! })?;
//! serve();
//! drop(toggle); // stops listening (and writes a capture still running)
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! Every capture gets its own file, numbered from 1 in the builder's directory
//! (`cpu-1.pb.gz`, `cpu-2.pb.gz`; with `.file("x.pb.gz")`, `x-1.pb.gz`...), skipping numbers
//! whose file already exists, so no earlier capture is ever overwritten. The signal
//! handler only writes a byte to a pipe; a thread (`profile-toggle`) starts and stops the
//! profiles. A signal that arrives while a profile is being written is handled after the
//! write. The one-guard rule applies: starting while another guard runs returns the same
//! [`Error::AlreadyActive`] as [`Builder::build`](crate::Builder::build). The builder's
//! shutdown hook stays in force during a capture (SIGTERM writes it, then the process
//! ends with status 143).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::builder::sealed::ModeImpl;
use crate::session::Output;
use crate::{Builder, Error, Guard, ProfileKind, sys};

/// `SIGUSR1`, the usual signal for toggling.
pub const SIGUSR1: i32 = sys::toggle::SIGUSR1;
/// `SIGUSR2`.
pub const SIGUSR2: i32 = sys::toggle::SIGUSR2;

type MakeGuard = dyn Fn(Option<PathBuf>) -> Result<Guard, Error> + Send + Sync;

struct State {
    running: Option<Guard>,
    /// The directory and file-name parts of numbered captures, fixed at creation.
    dir: PathBuf,
    stem: String,
    extension: String,
}

/// Starts and stops captures from any thread. Cloning gives another handle to the same
/// captures.
#[derive(Clone)]
pub struct Toggle {
    make: Arc<MakeGuard>,
    state: Arc<Mutex<State>>,
    kind: ProfileKind,
}

impl fmt::Debug for Toggle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toggle")
            .field("kind", &self.kind)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

/// (directory, stem, extension) of the numbered files for a builder's output.
fn numbering(output: &Output, kind: ProfileKind) -> Result<(PathBuf, String, String), Error> {
    let split = |name: &str| match name.find('.') {
        Some(i) if i > 0 => (name[..i].to_owned(), name[i..].to_owned()),
        _ => (name.to_owned(), String::new()),
    };
    Ok(match output {
        Output::TempDir => {
            let (stem, ext) = split(kind.file_name());
            (crate::output::temp_dir()?, stem, ext)
        }
        Output::Dir(dir) => {
            let (stem, ext) = split(kind.file_name());
            (dir.clone(), stem, ext)
        }
        Output::File(file) => {
            let name = file.file_name().map_or_else(
                || kind.file_name().to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            let (stem, ext) = split(&name);
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (dir, stem, ext)
        }
    })
}

impl Toggle {
    /// Captures made from `make` (called for every capture, so it can read settings that
    /// change). The builder's output path is checked now; each capture's file is numbered.
    pub fn new<M>(make: impl Fn() -> Builder<M> + Send + Sync + 'static) -> Result<Toggle, Error>
    where
        M: ModeImpl + 'static,
    {
        let probe = make();
        let kind = probe.kind();
        probe.validate()?;
        let (dir, stem, extension) = numbering(probe.output(), kind)?;
        crate::output::prepare_dir(&dir)?;
        Ok(Toggle {
            make: Arc::new(move |file: Option<PathBuf>| {
                let b = make();
                match file {
                    Some(f) => b.file(f).build(),
                    None => b.build(),
                }
            }),
            state: Arc::new(Mutex::new(State {
                running: None,
                dir,
                stem,
                extension,
            })),
            kind,
        })
    }

    /// The kind of profile captured.
    pub fn kind(&self) -> ProfileKind {
        self.kind
    }

    /// Whether a capture is running.
    pub fn is_running(&self) -> bool {
        self.state.lock().running.is_some()
    }

    /// Starts a capture; returns the file it will write.
    ///
    /// Errors: [`Error::AlreadyActive`] if this toggle's capture or any other guard is
    /// running; what [`Builder::build`](crate::Builder::build) returns otherwise.
    pub fn start(&self) -> Result<PathBuf, Error> {
        let mut state = self.state.lock();
        if state.running.is_some() {
            return Err(Error::AlreadyActive { mode: self.kind });
        }
        let path = (1..)
            .map(|n| {
                state
                    .dir
                    .join(format!("{}-{n}{}", state.stem, state.extension))
            })
            .find(|p| !p.exists())
            .unwrap_or_default();
        let guard = (self.make)(Some(path.clone()))?;
        state.running = Some(guard);
        Ok(path)
    }

    /// Stops the running capture and writes its file; returns the path.
    ///
    /// Errors: [`Error::NotRunning`] if no capture runs; the write's error otherwise (the
    /// capture is over either way).
    pub fn stop(&self) -> Result<PathBuf, Error> {
        let mut state = self.state.lock();
        match state.running.take() {
            Some(guard) => guard.stop(),
            None => Err(Error::NotRunning { mode: self.kind }),
        }
    }

    /// Starts a capture if none runs, else stops it: `Ok(None)` after a start,
    /// `Ok(Some(path))` after a stop.
    pub fn toggle(&self) -> Result<Option<PathBuf>, Error> {
        if self.is_running() {
            self.stop().map(Some)
        } else {
            self.start().map(|_| None)
        }
    }
}

/// Toggling by a signal; dropping it (or [`off`](SignalToggle::off)) restores the
/// signal's previous disposition and writes a capture still running.
#[must_use = "dropping a SignalToggle stops listening for the signal"]
#[derive(Debug)]
pub struct SignalToggle {
    toggle: Toggle,
    listener: Option<sys::toggle::Listener>,
}

impl SignalToggle {
    /// The captures, for starting and stopping them from code too.
    pub fn toggle(&self) -> &Toggle {
        &self.toggle
    }

    /// Stops listening; writes a capture still running and returns its path.
    pub fn off(mut self) -> Result<Option<PathBuf>, Error> {
        self.stop_listening()
    }

    fn stop_listening(&mut self) -> Result<Option<PathBuf>, Error> {
        if let Some(l) = self.listener.take() {
            l.stop();
        }
        if self.toggle.is_running() {
            self.toggle.stop().map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Drop for SignalToggle {
    fn drop(&mut self) {
        if let Err(e) = self.stop_listening() {
            eprintln!("profile: toggle: the last capture could not be written: {e}");
        }
    }
}

/// Each delivery of `signal` starts a capture from `make`'s builder; the next one stops it
/// and writes the file (numbered: `cpu-1.pb.gz`, `cpu-2.pb.gz`...).
///
/// Errors: what [`Toggle::new`] returns; [`Error::Signal`] if the signal cannot be
/// handled (SIGKILL, SIGSTOP, an invalid number) or another toggle listens already;
/// [`Error::SignalInUse`] if the application has its own handler on `signal` (it is never
/// replaced; an ignored signal is taken, and restored when the toggle stops);
/// [`Error::Unsupported`] off Linux.
pub fn on_signal<M>(
    signal: i32,
    make: impl Fn() -> Builder<M> + Send + Sync + 'static,
) -> Result<SignalToggle, Error>
where
    M: ModeImpl + 'static,
{
    let toggle = Toggle::new(make)?;
    let for_thread = toggle.clone();
    let listener = sys::toggle::Listener::start(signal, move || match for_thread.toggle() {
        Ok(Some(path)) => eprintln!("profile: toggle: wrote {}", path.display()),
        Ok(None) => {}
        Err(e) => eprintln!("profile: toggle: {e}"),
    })?;
    Ok(SignalToggle {
        toggle,
        listener: Some(listener),
    })
}
