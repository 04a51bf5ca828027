//! Showing sync progress: a bar per transfer when stderr is a terminal, plain log lines otherwise.

use std::collections::HashMap;

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{Progress, SyncEvent};
use crate::stage::TransferStage;

/// Before the number of records is known.
const STAGE_TEMPLATE: &str = "{prefix:>4}: {msg} ({elapsed})";
/// While records move.
const BAR_TEMPLATE: &str = "{prefix:>4}: [{bar:32}] {pos}/{len} records, {msg} ({elapsed})";

/// The transfers of one sync, as the client sees them (one after the other: a bar each).
pub(crate) struct ProgressView {
    terminal: bool,
    transfers: HashMap<String, Transfer>,
}

struct Transfer {
    bar: Option<ProgressBar>,
    total: u64,
}

impl ProgressView {
    /// Bars when `terminal`, log lines otherwise.
    pub fn new(terminal: bool) -> Self {
        ProgressView { terminal, transfers: HashMap::new() }
    }

    /// Shows one event.
    pub fn show(&mut self, event: &SyncEvent) {
        let direction = direction(event.push);
        let transfer = self.transfers.entry(event.transfer_session_id.clone()).or_insert_with(|| Transfer {
            bar: self.terminal.then(|| ProgressBar::new(0).with_style(style(STAGE_TEMPLATE)).with_prefix(direction)),
            total: 0,
        });
        match (&event.progress, &transfer.bar) {
            (Progress::Started, Some(bar)) => bar.set_message(event.stage.as_str()),
            (Progress::Started, None) => tracing::debug!("{direction}: {}", event.stage),
            (Progress::InProgress { done, total }, bar) => {
                transfer.total = *total;
                match bar {
                    Some(bar) => {
                        if bar.length() == Some(0) && *total > 0 {
                            bar.set_style(style(BAR_TEMPLATE));
                        }
                        bar.set_length(*total);
                        bar.set_position(*done);
                    }
                    None => tracing::info!("{direction}: {done}/{}", records(*total)),
                }
            }
            (Progress::Completed, bar) if event.stage == TransferStage::Cleanup => {
                match bar {
                    Some(bar) => bar.finish_with_message(format!("done, {}", records(transfer.total))),
                    None => tracing::info!("{direction} finished: {}", records(transfer.total)),
                }
                self.transfers.remove(&event.transfer_session_id);
            }
            (Progress::Completed, _) => tracing::debug!("{direction}: {} completed", event.stage),
            (Progress::Errored(message), bar) => {
                match bar {
                    Some(bar) => bar.abandon_with_message(format!("{} failed", event.stage)),
                    None => tracing::warn!("{direction} failed during {}: {message}", event.stage),
                }
                self.transfers.remove(&event.transfer_session_id);
            }
        }
    }

    /// Leaves the bars of transfers that did not finish where they stopped.
    pub fn finish(&mut self) {
        for (_, transfer) in self.transfers.drain() {
            if let Some(bar) = transfer.bar {
                bar.abandon();
            }
        }
    }
}

/// What the server shows of the transfers clients run with it: a log line when one ends or fails.
#[derive(Default)]
pub(crate) struct ServerLog {
    totals: HashMap<String, u64>,
}

impl ServerLog {
    pub fn show(&mut self, event: &SyncEvent) {
        let id = &event.transfer_session_id;
        let short = id.get(..8).unwrap_or(id);
        let direction = direction(event.push);
        match &event.progress {
            Progress::InProgress { total, .. } => {
                self.totals.insert(id.clone(), *total);
            }
            Progress::Completed if event.stage == TransferStage::Cleanup => {
                let moved = self.totals.remove(id).map(|n| format!(", {}", records(n))).unwrap_or_default();
                tracing::info!("a client's {direction} finished (transfer {short}{moved})");
            }
            Progress::Errored(message) => {
                self.totals.remove(id);
                tracing::warn!("a client's {direction} failed during {} (transfer {short}): {message}", event.stage);
            }
            _ => {}
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `1 record`, `2 records`.
fn records(n: u64) -> String {
    if n == 1 { "1 record".into() } else { format!("{n} records") }
}

fn direction(push: bool) -> &'static str {
    if push { "push" } else { "pull" }
}
