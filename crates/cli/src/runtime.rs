//! The async runtime a command runs on: one thread is enough for one command at a time.

use std::future::Future;

/// Runs `future` to completion; a runtime that cannot start is the command's error.
pub fn block_on<T>(future: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(future)
}
