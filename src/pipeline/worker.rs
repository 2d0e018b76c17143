//! The background worker protocol: one thread per handle in `Threads` mode.
//!
//! The thread sleeps on [`Core::work_cv`] until its engine reports work
//! ([`EngineCore::background_due`]), runs one [`EngineCore::background_step`] with no pipeline lock held,
//! and goes back to sleep. A failed step poisons the handle and the worker does nothing more. Close sets
//! `stop`: the worker finishes what the engine says must finish, then exits, and close joins it. The
//! thread holds the engine's `Arc`, so the handle's `Drop` (which closes) is what ends it.

use std::sync::Arc;
use std::time::Duration;

use super::{Core, EngineCore};
use crate::error::{Error, Result};

/// What the handle and its worker share, under `Core::work`.
#[derive(Debug, Default)]
pub(super) struct WorkState {
    /// Close asked the worker to exit.
    pub(super) stop: bool,
    /// A step is running.
    pub(super) running: bool,
    /// Why a step failed; the worker stops working.
    pub(super) error: Option<String>,
}

/// Starts the worker thread of `engine` (call once, in `Threads` mode).
///
/// # Errors
/// `Io` if the thread cannot be spawned.
pub(crate) fn spawn_worker<E: EngineCore>(engine: &Arc<E>, name: &str) -> Result<()> {
    let e = Arc::clone(engine);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(&*e))
        .map_err(|e| Error::Io(crate::storage::io_context(e, "starting the thread", name)))?;
    *engine.core().worker.lock() = Some(handle);
    Ok(())
}

fn run<E: EngineCore>(engine: &E) {
    let core = engine.core();
    loop {
        {
            let mut work = core.work.lock();
            loop {
                if work.error.is_none() && engine.background_due(work.stop) {
                    break;
                }
                if work.stop {
                    return;
                }
                core.work_cv.wait_for(&mut work, Duration::from_millis(100));
            }
            work.running = true;
        }
        let result = engine.background_step();
        let mut work = core.work.lock();
        work.running = false;
        if let Err(e) = result {
            work.error = Some(core.poison(e).describe());
        }
        core.work_cv.notify_all();
    }
}

impl Core {
    /// Wakes the worker (and every waiter) to look for work.
    pub(crate) fn notify_worker(&self) {
        if self.background == crate::engine::Background::Threads {
            self.work_cv.notify_all();
        }
    }

    /// Waits, holding no lock of the caller's, until `done(running)` holds (`running`: a step is running
    /// now), or close stops the worker. `done` is called under the work lock; it may take the engine's own
    /// locks but never the writer mutex.
    ///
    /// # Errors
    /// `Poisoned` if a background step failed.
    pub(crate) fn wait_worker(&self, done: impl Fn(bool) -> bool) -> Result<()> {
        let mut work = self.work.lock();
        loop {
            if let Some(cause) = &work.error {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if work.stop || done(work.running) {
                return Ok(());
            }
            self.work_cv.notify_all();
            self.work_cv.wait_for(&mut work, Duration::from_millis(10));
        }
    }

    /// Asks the worker to stop and joins it (a no-op without one).
    pub(super) fn stop_worker(&self) {
        self.work.lock().stop = true;
        self.work_cv.notify_all();
        if let Some(handle) = self.worker.lock().take() {
            let _ = handle.join();
        }
    }
}
