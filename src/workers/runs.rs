//! Drives plan runs (`crate::actions::runs::drive`) every half second, or at once when a step's
//! request ended or a control was used, until `stop` turns true. Every replica runs it;
//! the store decides which one moves each step.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::actions::runs::drive::{drive_all, WAKE};
use crate::app::App;

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = drive_all(&app).await {
            tracing::error!(error = %e, "could not drive plan runs; trying again");
        }
        tokio::select! {
            _ = WAKE.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}
