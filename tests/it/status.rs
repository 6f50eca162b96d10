//! `/dr status`: the first thing an SRE types in the worst hour of the quarter.

use crate::support::aws::{seed_database, seed_ip_sets, seed_service};
use crate::support::*;

#[tokio::test]
async fn status_shows_services_databases_rpo_exposure_blocks_and_pending_approvals() {
    let svc = seed_service(3, 1).await;
    let db = seed_database(1).await;
    let sets = seed_ip_sets(
        false,
        vec!["198.51.100.1/32".into(), "198.51.100.2/32".into()],
    )
    .await;
    let config = format!(
        "[approval]\nofficers = [\"U0SECOFF1\"]\n\n{}\n{}\n{}",
        svc.config(),
        db.config(),
        sets.config()
    );
    let app = spawn_app_with(&config).await;
    let text = app.slash("status").reply().await;
    assert!(
        text.contains(&format!(
            "• `api`: `{}:3`, running 1/1, rollout COMPLETED",
            svc.family
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "• `main` (`{}`): available, latest restorable",
            db.instance
        )),
        "{text}"
    );
    // moto takes an automated snapshot when the instance is created.
    assert!(
        text.contains("newest snapshot `") && text.contains("s old"),
        "{text}"
    );
    assert!(!text.contains("older than the 1h RPO"), "{text}");
    assert!(
        text.contains(&format!("• `{}`: 2 blocked address(es)", sets.v4.0)),
        "{text}"
    );
    assert!(text.contains("*Pending approvals*: none"), "{text}");
}
