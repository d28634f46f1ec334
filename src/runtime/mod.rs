//! The lower level, like Go's `runtime/pprof`: start and stop profilers directly and get
//! [`Profile`](crate::Profile) values back instead of files. Profilers of different kinds
//! may run at the same time here (a guard allows one mode); each kind allows one running
//! profiler per process.

pub mod block;
pub mod clock;
pub mod cpu;
pub mod heap;
pub mod mutex;
#[cfg(feature = "threadcreate")]
pub mod threadcreate;
pub mod threads;

/// The process's command-line arguments, the program first (what Go's
/// `/debug/pprof/cmdline` serves, joined by NUL bytes). Arguments that are not valid
/// UTF-8 are converted lossily.
pub fn cmdline() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cmdline_is_the_program_and_its_arguments() {
        let args = super::cmdline();
        let exe = std::env::current_exe().unwrap();
        let first = std::path::Path::new(&args[0]);
        assert_eq!(
            first.file_name(),
            exe.file_name(),
            "{args:?} should start with this test binary"
        );
        assert_eq!(args.len(), std::env::args_os().count());
    }
}
