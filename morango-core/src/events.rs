//! Progress events of syncs, for applications to show (a progress bar, a log line).

use crate::stage::TransferStage;

/// One step of a transfer's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEvent {
    /// The transfer session.
    pub transfer_session_id: String,
    /// True for a push (this side sends), false for a pull.
    pub push: bool,
    /// The stage the event is about.
    pub stage: TransferStage,
    /// What happened.
    pub progress: Progress,
}

/// What happened in a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The stage began.
    Started,
    /// Records moved so far out of the total (transferring stage).
    InProgress {
        /// Records done.
        done: u64,
        /// Records in all.
        total: u64,
    },
    /// The stage finished.
    Completed,
    /// The stage failed with this message.
    Errored(String),
}
