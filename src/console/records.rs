//! The records both consoles link to: an incident's timeline export and this quarter's DR
//! review, rendered from the store exactly as `drbot timeline export` and `drbot report` do.

use crate::scenarios::ScenarioSet;
use crate::store::{Store, StoreError};

/// Incident `id`'s timeline (HTML), with the chain's verification.
pub async fn timeline_html(store: &Store, id: &str) -> Result<String, StoreError> {
    let events = store.events(Some(id)).await?;
    let report = store.verify().await?;
    let head = store.head().await?;
    let names = crate::timeline::names::Names::new(store.names().await?);
    let summary = crate::timeline::summary::summarise(&events, None);
    Ok(crate::timeline::render(
        crate::timeline::Format::Html,
        &crate::timeline::Export {
            title: format!("incident {id}"),
            events: &events,
            report: &report,
            head,
            names,
            summary,
        },
    ))
}

/// This quarter's DR review (HTML), RTO targets from `scenarios`.
pub async fn report_html(
    store: &Store,
    scenarios: Option<&ScenarioSet>,
) -> Result<String, StoreError> {
    let period = crate::report::Period::parse(None, None, crate::clock::now())
        .map_err(|e| StoreError::NotWritten(e.to_string()))?;
    let events = store.events(None).await?;
    let r = crate::report::build(&events, period, |id| scenarios?.get(id)?.rto.seconds());
    Ok(crate::report::render(crate::timeline::Format::Html, &r))
}
