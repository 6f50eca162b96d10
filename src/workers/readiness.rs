//! Readiness on schedule (SPEC §15): every scenario checked at start-up (once it has
//! settled, [`FIRST_CHECK_AFTER`]) and every `[readiness] every` (claimed in the store, so
//! once across replicas), beside the other
//! loops — a dark region holds only this check, never expiry or the outbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;

/// The schedule's task name.
const TASK: &str = "readiness";

/// How long after start-up the first check waits (on drbot's clock): a restart's recovery
/// and Slack's reconnection come first, and replicas restarted together by a deploy do not
/// all read every region at the same moment.
pub const FIRST_CHECK_AFTER: Duration = Duration::from_secs(15);

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let running = Arc::new(AtomicBool::new(false));
    let mut moved = crate::clock::moved();
    let started = crate::clock::now();
    let mut first = true;
    loop {
        let settled = crate::clock::now() - started
            >= chrono::Duration::from_std(FIRST_CHECK_AFTER).unwrap_or_default();
        // Once settled, the start-up check runs whatever the schedule says (and the claim
        // records the run); then the schedule decides.
        let due = settled && (claim(&app).await || first);
        if settled {
            first = false;
        }
        if due && !running.swap(true, Ordering::SeqCst) {
            let (app, running) = (app.clone(), running.clone());
            tokio::spawn(async move {
                crate::actions::readiness::check_and_record(&app).await;
                running.store(false, Ordering::SeqCst);
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = moved.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Whether this replica runs the scheduled check now.
async fn claim(app: &Arc<App>) -> bool {
    let every = app.settings.readiness.every.as_duration();
    let now = crate::clock::now();
    let claimed = async {
        if !app.store.schedule_due(TASK, every, now).await? {
            return Ok(false);
        }
        let mut tx = app.store.begin().await?;
        let due = tx.claim_schedule(TASK, every, now).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(due)
    };
    claimed.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not read the readiness schedule");
        false
    })
}
