//! Time in UTC, formatted one way everywhere (RFC 3339, milliseconds, `Z`), and drbot's
//! one notion of "now": the system clock, moved forward by an offset that only tests set.
//! Request expiry, reminders, the users' notice, timed unblocks, checkpoints and schedules
//! all read [`now`] and the loops that run them wake when it moves ([`moved`]), so a test
//! moves time instead of sleeping. Timers ([`sleep`], [`timeout`], [`Backoff`]) measure
//! spans on the monotonic clock plus the offset moved meanwhile ([`Stopwatch`]), so a step
//! of the system clock never stretches a wait. Signature freshness is Slack's real time,
//! never this.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;

/// How far drbot's time is ahead of the system clock, in milliseconds.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

fn offset_watch() -> &'static watch::Sender<i64> {
    static MOVED: OnceLock<watch::Sender<i64>> = OnceLock::new();
    MOVED.get_or_init(|| watch::channel(0).0)
}

pub fn now() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(OFFSET_MS.load(Ordering::Relaxed))
}

/// The system clock, unmoved: for what is measured against other machines' clocks.
pub fn wall() -> DateTime<Utc> {
    Utc::now()
}

/// Sets drbot's time `ms` milliseconds ahead of the system clock. Time only moves forward:
/// a smaller offset than the current one is ignored.
pub fn set_offset_ms(ms: i64) {
    let before = OFFSET_MS.fetch_max(ms, Ordering::Relaxed);
    if ms > before {
        offset_watch().send_replace(ms);
    }
}

/// Moves drbot's time forward by `by`.
pub fn advance(by: chrono::Duration) {
    set_offset_ms(OFFSET_MS.load(Ordering::Relaxed) + by.num_milliseconds().max(0));
}

/// A receiver that changes whenever time is moved: the timer loops select on it beside
/// their sleep, so moved time is acted on at once.
pub fn moved() -> watch::Receiver<i64> {
    offset_watch().subscribe()
}

/// Measures a span of drbot's time: the monotonic clock's (a step of the system clock by
/// NTP changes nothing), plus however far a test moved time meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    from: std::time::Instant,
    offset_ms: i64,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            from: std::time::Instant::now(),
            offset_ms: OFFSET_MS.load(Ordering::Relaxed),
        }
    }

    pub fn elapsed(&self) -> std::time::Duration {
        let moved = OFFSET_MS.load(Ordering::Relaxed) - self.offset_ms;
        self.from.elapsed() + std::time::Duration::from_millis(moved.max(0) as u64)
    }
}

/// Waits `d` of drbot's time: as long as the monotonic clock's `d`, shorter when time is
/// moved meanwhile (for the timers a test moves instead of sleeping: Slack's call timeout
/// and retry waits, the outbox's pacing, the names loop, the heartbeat, AWS retries and
/// attempt timeouts, [`Backoff`]).
pub async fn sleep(d: std::time::Duration) {
    let watch = Stopwatch::start();
    let mut moved = moved();
    loop {
        let left = d.saturating_sub(watch.elapsed());
        if left.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = moved.changed() => {}
        }
    }
}

/// `work`'s output, or `Err(TimedOut)` once `d` of drbot's time has passed (see [`sleep`]).
pub async fn timeout<F: std::future::Future>(
    d: std::time::Duration,
    work: F,
) -> Result<F::Output, TimedOut> {
    tokio::select! {
        out = work => Ok(out),
        () = sleep(d) => Err(TimedOut),
    }
}

/// What [`timeout`] answers when the time ran out first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// Following something in AWS until it settles: polls with backoff (the first wait, twice
/// as long each time up to `longest`) until `timeout`, in drbot's time. The one polling loop
/// of the rollout, DNS and RDS followers.
#[derive(Debug, Clone)]
pub struct Backoff {
    started: Stopwatch,
    wait: std::time::Duration,
    longest: std::time::Duration,
    timeout: std::time::Duration,
    report_every: std::time::Duration,
    reported: Stopwatch,
}

impl Backoff {
    pub fn new(
        first: std::time::Duration,
        longest: std::time::Duration,
        timeout: std::time::Duration,
        report_every: std::time::Duration,
    ) -> Backoff {
        let started = Stopwatch::start();
        Backoff {
            started,
            wait: first,
            longest,
            timeout,
            report_every,
            reported: started,
        }
    }

    /// How long it has followed.
    pub fn so_far(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn timed_out(&self) -> bool {
        self.so_far() >= self.timeout
    }

    /// True at most once every `report_every` (the first time after it has passed).
    pub fn report_due(&mut self) -> bool {
        let due = self.reported.elapsed() >= self.report_every;
        if due {
            self.reported = Stopwatch::start();
        }
        due
    }

    /// Waits before the next poll (never past the timeout), and doubles the next wait.
    pub async fn wait(&mut self) {
        sleep(self.wait.min(self.timeout.saturating_sub(self.so_far()))).await;
        self.wait = (self.wait * 2).min(self.longest);
    }
}

/// For tests that start the real binary: follows `path`, a file holding how many
/// milliseconds drbot's time is ahead of the system clock (`DRBOT_TEST_CLOCK`). Read every
/// 20 ms; a missing or unreadable file changes nothing.
pub fn follow_file(path: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                if let Ok(ms) = text.trim().parse::<i64>() {
                    set_offset_ms(ms);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time drbot wrote with [`rfc3339`], read back.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// A number that differs from run to run and call to call (a pick among equals, a
/// throwaway secret's seed); not of cryptographic quality.
pub fn varying() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that move time take turns (time is one for the whole process).
    static MOVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[test]
    fn time_moves_forward_only_and_wakes_the_loops() {
        let _turn = MOVING.blocking_lock();
        let mut rx = moved();
        let before = now();
        advance(chrono::Duration::hours(2));
        assert!(now() - before >= chrono::Duration::hours(2));
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        set_offset_ms(0);
        assert!(
            now() - before >= chrono::Duration::hours(2),
            "time never goes back"
        );
        assert!(!rx.has_changed().unwrap());
        assert!(now() - wall() > chrono::Duration::hours(2) - chrono::Duration::seconds(1));
    }

    #[tokio::test]
    async fn following_polls_with_doubling_waits_reports_seldom_and_ends_at_the_timeout() {
        let _turn = MOVING.lock().await;
        let ms = std::time::Duration::from_millis;
        let mut polls = Backoff::new(
            ms(10),
            ms(25),
            std::time::Duration::from_secs(3600),
            ms(5000),
        );
        assert!(!polls.timed_out() && !polls.report_due());
        let started = std::time::Instant::now();
        polls.wait().await; // 10 ms
        polls.wait().await; // 20 ms
        polls.wait().await; // 25 ms, the longest
        let waited = started.elapsed();
        assert!(waited >= ms(55) && waited < ms(2000), "{waited:?}");
        assert_eq!(polls.wait, ms(25));
        advance(chrono::Duration::seconds(6));
        assert!(polls.report_due(), "due once 5 s have passed");
        assert!(!polls.report_due(), "then not again at once");
        assert!(!polls.timed_out());
        advance(chrono::Duration::hours(1));
        assert!(polls.timed_out());
        // Past the timeout, a wait does not wait.
        let started = std::time::Instant::now();
        polls.wait().await;
        assert!(started.elapsed() < ms(1000));
    }

    #[test]
    fn a_stopwatch_counts_moved_time_beside_the_monotonic_clock() {
        let _turn = MOVING.blocking_lock();
        let watch = Stopwatch::start();
        assert!(watch.elapsed() < std::time::Duration::from_secs(5));
        advance(chrono::Duration::minutes(3));
        let elapsed = watch.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_secs(180)
                && elapsed < std::time::Duration::from_secs(185),
            "{elapsed:?}"
        );
        assert!(Stopwatch::start().elapsed() < std::time::Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_timer_ends_when_time_is_moved_past_it() {
        let _turn = MOVING.lock().await;
        let long = std::time::Duration::from_secs(3600);
        let started = std::time::Instant::now();
        let waiting = tokio::spawn(timeout(long, std::future::pending::<()>()));
        let sleeping = tokio::spawn(sleep(long));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished() && !sleeping.is_finished());
        advance(chrono::Duration::hours(2));
        assert_eq!(waiting.await.unwrap(), Err(TimedOut));
        sleeping.await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Unmoved, it is the monotonic clock's time; work that ends first wins.
        let quick = timeout(
            std::time::Duration::from_millis(30),
            sleep(std::time::Duration::from_millis(1)),
        );
        assert_eq!(quick.await, Ok(()));
        let slow = timeout(
            std::time::Duration::from_millis(30),
            tokio::time::sleep(long),
        );
        assert_eq!(slow.await, Err(TimedOut));
    }
}
