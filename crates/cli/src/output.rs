//! Writing to the terminal without panicking: `println!` panics when stdout is closed
//! (e.g. piped into `head`), and a closed pipe is not an error worth a panic.

use std::io::Write;

/// Writes one line to stdout, ignoring a closed pipe.
pub fn out(line: impl AsRef<str>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.as_ref());
}

/// Writes one line to stderr, ignoring a closed pipe.
pub fn err(line: impl AsRef<str>) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", line.as_ref());
}
