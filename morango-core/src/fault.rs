//! Injected crashes, for the tests that kill a sync at every stage (feature `fault-injection`, off by default).
//!
//! With the feature on, `MORANGO_FAULT=<point>` (or `<point>@<n>`: its n-th time) makes the process abort at that
//! point, as `kill -9` would stop it: no destructor runs, no transaction is committed or rolled back by this
//! process, no request is answered. It prints `morango: fault injected at <point>` to standard error first.
//! Points: `<stage>.start` after a stage was recorded as started, `<stage>.end` after its work and before it is
//! recorded as completed (on the client and on the server alike), and `<work>.commit` just before a transaction
//! commits: `serialize`, `queue`, `receive` (a received chunk), `dequeue`, `deserialize`; `send` before a pushed
//! chunk is sent, `page` before a pulled page is answered. Without the feature every point is a no-op.

/// Aborts the process here if `MORANGO_FAULT` names this point (and this is the time it names).
#[cfg(feature = "fault-injection")]
pub(crate) fn point(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    static WANTED: OnceLock<Option<(String, u32)>> = OnceLock::new();
    static HITS: AtomicU32 = AtomicU32::new(0);
    let wanted = WANTED.get_or_init(|| {
        let text = std::env::var("MORANGO_FAULT").ok()?;
        match text.split_once('@') {
            Some((point, n)) => Some((point.to_owned(), n.parse().ok()?)),
            None => Some((text, 1)),
        }
    });
    let Some((point, nth)) = wanted else { return };
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        eprintln!("morango: fault injected at {name}");
        std::process::abort();
    }
}

/// Without the feature, a no-op.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_name: &str) {}
