//! Morango's seven transfer stages and their statuses (spec §9.1), with their wire names.

use std::fmt;
use std::str::FromStr;

/// A stage of a transfer session, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransferStage {
    /// Both sides create the transfer session.
    Initializing,
    /// The producer serializes application rows into its store; both compute their FSIC.
    Serializing,
    /// The producer queues the records the receiver lacks into its buffer.
    Queuing,
    /// Records move from the producer's buffer to the receiver's, in chunks.
    Transferring,
    /// The receiver merges its buffer into its store.
    Dequeuing,
    /// The receiver writes changed store records into its application tables.
    Deserializing,
    /// Buffers are removed and the transfer session is closed.
    Cleanup,
}

impl TransferStage {
    /// All stages in order.
    pub const ALL: [TransferStage; 7] = [
        TransferStage::Initializing,
        TransferStage::Serializing,
        TransferStage::Queuing,
        TransferStage::Transferring,
        TransferStage::Dequeuing,
        TransferStage::Deserializing,
        TransferStage::Cleanup,
    ];

    /// The wire name (`"initializing"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStage::Initializing => "initializing",
            TransferStage::Serializing => "serializing",
            TransferStage::Queuing => "queuing",
            TransferStage::Transferring => "transferring",
            TransferStage::Dequeuing => "dequeuing",
            TransferStage::Deserializing => "deserializing",
            TransferStage::Cleanup => "cleanup",
        }
    }

    /// The stage after this one, if any.
    pub fn next(self) -> Option<TransferStage> {
        TransferStage::ALL.iter().copied().find(|s| *s > self)
    }
}

impl fmt::Display for TransferStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for TransferStage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransferStage::ALL
            .iter()
            .copied()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown stage `{s}`"))
    }
}

/// The status of the current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferStatus {
    /// Not started yet, or waiting to be run again.
    Pending,
    /// Running.
    Started,
    /// Done.
    Completed,
    /// Failed; the session does not advance any more.
    Errored,
}

impl TransferStatus {
    /// The wire name (`"pending"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Pending => "pending",
            TransferStatus::Started => "started",
            TransferStatus::Completed => "completed",
            TransferStatus::Errored => "errored",
        }
    }
}

impl fmt::Display for TransferStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for TransferStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [TransferStatus::Pending, TransferStatus::Started, TransferStatus::Completed, TransferStatus::Errored]
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_through_their_wire_names_in_order() {
        let names: Vec<_> = TransferStage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["initializing", "serializing", "queuing", "transferring", "dequeuing", "deserializing", "cleanup"]
        );
        for stage in TransferStage::ALL {
            assert_eq!(stage.as_str().parse::<TransferStage>(), Ok(stage));
        }
        assert_eq!(TransferStage::Cleanup.next(), None);
        assert_eq!(TransferStage::Queuing.next(), Some(TransferStage::Transferring));
    }
}
