//! Work that runs beside the HTTP listener: planning queued commands against AWS, expiring
//! unanswered requests, and start-up recovery (interrupted executions, unposted requests,
//! jobs that were running). State lives in the store; these loops only act on it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tracing::Instrument;

pub mod access;
pub mod alarms;
pub mod jobs;
pub mod names;
pub mod outbox;
pub mod publish;
pub mod readiness;
pub mod runs;
pub mod slack_down;

use jobs::Work;

use crate::actions::blocklist;
use crate::actions::{self, ActionKind, PlanFailure};
use crate::app::App;
use crate::config::WafIpSetRef;
use crate::gate::{self, request::Asker};
use crate::router::{self, Approval};
use crate::store::{
    Backend, Block, EventKind, Job, JobClaim, Liveness, NewEvent, Outgoing, RequestState,
    StoreError, Whose,
};

use crate::config::SCHEDULER;

/// At start-up, before serving: this replica announces itself, then takes over what the
/// replicas that are gone left unfinished. On SQLite (one process) that is everything; on
/// PostgreSQL only the work of replicas whose lease has lapsed.
pub async fn recover(app: &Arc<App>) -> Result<(), StoreError> {
    app.store.heartbeat().await?;
    let liveness = match app.store.backend() {
        Backend::Sqlite => Liveness::OnlyMe,
        Backend::Postgres => Liveness::Heartbeat,
    };
    take_over(app, liveness).await
}

/// Runs again the jobs, interrupts the executions and posts the requests of replicas that
/// are gone (at start-up, and every half second for replicas that die while others run).
pub async fn take_over(app: &Arc<App>, liveness: Liveness) -> Result<(), StoreError> {
    if !app.store.lease_current() {
        return Ok(());
    }
    // Rows a live replica (this one too) left behind after a lost commit.
    let stuck = app.store.requeue_stuck_jobs().await?;
    let unsent = app.store.requeue_stuck_outbox().await?;
    if stuck + unsent > 0 {
        tracing::warn!(
            jobs = stuck,
            slack_messages = unsent,
            "work left running past its deadline (a lost commit) was queued again"
        );
        app.jobs.notify_one();
        app.store.outbox_wake().notify_one();
    }
    // A replica whose lease has not been held for a whole lease yet cannot tell a peer
    // that is gone from one the store stalled, as it did itself.
    if !app.store.may_take_over(liveness) {
        return Ok(());
    }
    let requeued = app.store.requeue_orphaned_jobs(liveness).await?;
    if requeued > 0 {
        tracing::warn!(
            requeued,
            "jobs that were running when their drbot stopped were queued again"
        );
        app.jobs.notify_one();
    }
    interrupt_executing(
        app,
        Whose::Orphaned(liveness),
        "interrupted: drbot stopped while executing; check AWS before asking again (it will not be re-run by itself)",
    )
    .await?;
    let requeued = app.store.requeue_orphaned_outbox(liveness).await?;
    if requeued > 0 {
        tracing::warn!(
            requeued,
            "Slack messages that were being sent when their drbot stopped will be sent again (unless Slack has them)"
        );
        app.store.outbox_wake().notify_one();
    }
    // Requests stored before their message went through the outbox (an older drbot): queue
    // it now; for the others the outbox already holds it and this queues nothing.
    let mut tx = app.store.begin().await?;
    for request in tx.claim_unposted(liveness).await? {
        gate::request::queue_post(&mut tx, app, &request).await?;
        // A message that could not be posted before is tried again, as its requester was told.
        tx.rearm_slack(gate::request::message_key(request.id))
            .await?;
    }
    tx.commit().await
}

/// Marks `executing` requests `interrupted` — this replica's own at shutdown (they will not
/// finish), those of replicas that are gone otherwise — records it and says so in each
/// thread. Such a request is never re-run by itself.
pub async fn interrupt_executing(
    app: &Arc<App>,
    whose: Whose,
    outcome: &str,
) -> Result<(), StoreError> {
    let mut tx = app.store.begin().await?;
    let executing = tx.executing_requests(whose).await?;
    if executing.is_empty() {
        return Ok(());
    }
    let mut interrupted = Vec::new();
    for request in executing {
        if tx
            .transition(
                request.id,
                &[RequestState::Executing],
                RequestState::Interrupted,
                None,
                Some(outcome),
            )
            .await?
        {
            tx.append(
                NewEvent::new(
                    EventKind::Request(RequestState::Interrupted),
                    "drbot",
                    &request.channel,
                    format!("{} interrupted: {outcome}", request.label()),
                )
                .detail(json!({"action_id": request.label()}))
                .incident(request.incident.clone()),
            )
            .await?;
            gate::execute::queue_refresh(
                &mut tx,
                &app.settings.approval,
                request.id,
                "*interrupted* — drbot stopped while this was executing. It will not run again by itself: check the resource, then ask again if needed.",
            )
            .await?;
            interrupted.push(request.id);
        }
    }
    tx.commit().await?;
    for id in interrupted {
        tracing::warn!(action_id = %format!("A-{id}"), "marked interrupted");
    }
    Ok(())
}

/// Takes queued jobs (planning commands, opening incidents) until `stop` turns true.
pub async fn run_jobs(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    loop {
        loop {
            match app.store.claim_job().await {
                // Claimed atomically, so each job runs once; jobs do not wait for each other.
                Ok(Some(job)) => {
                    let app = app.clone();
                    tokio::spawn(async move { run_job(&app, job).await });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "could not take a job");
                    break;
                }
            }
        }
        tokio::select! {
            _ = app.jobs.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Renews this replica's heartbeat until `stop` turns true.
pub async fn run_heartbeat(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let every = app.store.heartbeat_every();
    loop {
        tokio::select! {
            // On drbot's clock, as the lease it renews is measured.
            () = crate::clock::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = app.store.heartbeat().await {
            tracing::error!(error = %e, "could not renew this replica's heartbeat");
        }
    }
}

/// Expires unanswered requests and lifts timed blocks every half second until `stop`
/// turns true.
pub async fn run_expiry(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut last_pruned = std::time::Instant::now();
    let mut moved = crate::clock::moved();
    loop {
        if last_pruned.elapsed() >= Duration::from_secs(60) {
            last_pruned = std::time::Instant::now();
            // Signatures older than Slack's 5-minute window cannot be replayed anyway (by
            // Slack's clock, the real one).
            let before =
                crate::clock::rfc3339(crate::clock::wall() - chrono::Duration::minutes(10));
            if let Err(e) = app.store.forget_seen_before(&before).await {
                tracing::error!(error = %e, "could not forget old request signatures");
            }
        }
        if let Err(e) = take_over(&app, Liveness::Heartbeat).await {
            tracing::error!(error = %e, "could not take over the work of stopped replicas");
        }
        if let Err(e) = expire_due(&app).await {
            tracing::error!(error = %e, "could not expire requests");
        }
        if let Err(e) = lift_due_blocks(&app).await {
            tracing::error!(error = %e, "could not lift timed blocks");
        }
        if let Err(e) = remind_followups(&app).await {
            tracing::warn!(error = %e, "could not remind overdue follow-ups");
        }
        if let Err(e) = remind_incidents(&app).await {
            tracing::error!(error = %e, "could not check incidents for reminders");
        }
        if let Err(e) = checkpoint_due(&app).await {
            tracing::error!(error = %e, "could not record an audit checkpoint");
        }
        if let Err(e) = schedule_due(&app).await {
            tracing::error!(error = %e, "could not start scheduled restore tests or backup checks");
        }
        if let Err(e) = actions::rds_restore_test::delete_due(&app).await {
            tracing::error!(error = %e, "could not delete restore-test instances");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = moved.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts what the configuration schedules, each once across replicas and restarts (the
/// `schedule` table): the restore test of each `[drills.restore_test]` database every
/// `every` (queued as the command `drill restore-test <db>` from drbot, approved by the
/// configuration), the copy of each `[rds.copies]` database's newest snapshot to the
/// backup region (`snapshot copy <db> --to-region backup`, likewise) with the deletion of
/// drbot's scheduled copies past `keep`, and the daily backup check of each database when
/// `[rds.retention]` is set. The first run is at once.
async fn schedule_due(app: &Arc<App>) -> Result<(), StoreError> {
    let now = crate::clock::now();
    if let (Some(test), Some(channel)) = (
        &app.settings.drills.restore_test,
        app.settings.ops_channel(),
    ) {
        for name in &test.databases {
            let text = format!("drill restore-test {name} --pick {}", test.pick.as_str());
            let task = format!("restore_test:{name}");
            if queue_scheduled(app, &task, test.every.as_duration(), &text, channel).await? {
                tracing::info!(database = %name, "scheduled restore test queued");
            }
        }
    }
    if let Some(channel) = app.settings.ops_channel() {
        let copies = &app.settings.rds.copies;
        for db in copies
            .databases
            .iter()
            .filter_map(|name| app.settings.database(name))
        {
            let task = format!("copy:{}", db.name);
            let every = copies.every.as_duration();
            if !app.store.schedule_due(&task, every, now).await? {
                continue;
            }
            let mut tx = app.store.begin().await?;
            let due = tx.claim_schedule(&task, every, now).await?;
            tx.commit().await?;
            if due {
                let (app, db, channel) = (app.clone(), db.clone(), channel.to_string());
                tokio::spawn(async move { copy_scheduled(&app, &db, &channel).await });
            }
        }
    }
    if app.settings.rds.retention.is_some() {
        let day = Duration::from_secs(86_400);
        for db in &app.settings.rds.databases {
            let task = format!("backups:{}", db.name);
            if !app.store.schedule_due(&task, day, now).await? {
                continue;
            }
            let mut tx = app.store.begin().await?;
            let due = tx.claim_schedule(&task, day, now).await?;
            tx.commit().await?;
            if due {
                let (app, db) = (app.clone(), db.clone());
                tokio::spawn(async move {
                    if let Err(e) = actions::rds_backups::check_scheduled(&app, &db).await {
                        tracing::error!(error = %e, "could not record the daily backup check");
                    }
                });
            }
        }
    }
    Ok(())
}

/// The schedule's copy of `db` to the backup region (when its newest snapshot has none
/// there yet), then the deletion of drbot's scheduled copies past `keep`.
async fn copy_scheduled(app: &Arc<App>, db: &crate::config::RdsDatabase, channel: &str) {
    match actions::rds_snapshot_copy::newest_not_copied(app, db).await {
        Ok(Some(source)) => {
            let text = format!(
                "snapshot copy {} --to-region backup --snapshot {}",
                db.name,
                if source.is_empty() { "latest" } else { &source }
            );
            let work = Work::Plan {
                text,
                user: SCHEDULER.to_string(),
                channel: channel.to_string(),
                response_url: String::new(),
                incident: None,
                scheduled: true,
            };
            let queued = async {
                let mut tx = app.store.begin().await?;
                work.enqueue(&mut tx).await?;
                tx.commit().await
            };
            match queued.await {
                Ok(()) => {
                    tracing::info!(database = %db.name, "scheduled copy to the backup region queued");
                    app.jobs.notify_one();
                }
                Err(e) => tracing::error!(error = %e, "could not queue the scheduled copy"),
            }
        }
        Ok(None) => {
            tracing::info!(database = %db.name, "the newest snapshot already has a copy in the backup region")
        }
        // Said once per schedule, where the copies' results are said.
        Err(e) => {
            let text = format!(
                ":warning: Scheduled copy of `{}` to the backup region: could not read the snapshots ({}). Tried again at the next schedule.",
                db.name,
                crate::slack::text::escape(&e.to_string())
            );
            let said = async {
                let mut tx = app.store.begin().await?;
                tx.append(
                    NewEvent::new(EventKind::AwsError, SCHEDULER, channel, text.clone())
                        .detail(json!({"operation": e.operation, "resource": e.resource, "scheduled_copy": db.name})),
                )
                .await?;
                tx.send_slack(Outgoing::post(channel, text)).await?;
                tx.commit().await
            };
            if let Err(e) = said.await {
                tracing::error!(error = %e, "could not report a failed scheduled copy");
            }
        }
    }
    if let Err(e) = actions::rds_snapshot_copy::prune_scheduled(app, db).await {
        tracing::error!(error = %e, "could not delete old scheduled copies");
    }
}

/// Queues `text` as drbot's own command in `channel` when scheduled task `task` is due,
/// once across replicas and restarts; `true` when this call queued it.
async fn queue_scheduled(
    app: &Arc<App>,
    task: &str,
    every: Duration,
    text: &str,
    channel: &str,
) -> Result<bool, StoreError> {
    let now = crate::clock::now();
    // Checked by a read first: the loop runs every half second, a write (and its fsync)
    // only when the task is due.
    if !app.store.schedule_due(task, every, now).await? {
        return Ok(false);
    }
    let mut tx = app.store.begin().await?;
    if !tx.claim_schedule(task, every, now).await? {
        return Ok(false);
    }
    Work::Plan {
        text: text.to_string(),
        user: SCHEDULER.to_string(),
        channel: channel.to_string(),
        response_url: String::new(),
        incident: None,
        scheduled: true,
    }
    .enqueue(&mut tx)
    .await?;
    tx.commit().await?;
    app.jobs.notify_one();
    Ok(true)
}

/// Records and posts a checkpoint of the chain's head every `audit.checkpoint_every` (when
/// the log grew since the last one).
async fn checkpoint_due(app: &Arc<App>) -> Result<(), StoreError> {
    let every = chrono::Duration::seconds(app.settings.audit.checkpoint_every.as_secs() as i64);
    let last = app
        .store
        .checkpoints()
        .await?
        .into_iter()
        .max_by(|a, b| a.at.cmp(&b.at));
    let head = app.store.head().await?;
    let due = match (&last, &head) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(last), Some((seq, _))) => {
            *seq > last.seq
                && chrono::DateTime::parse_from_rfc3339(&last.at)
                    .map(|t| crate::clock::now() - t.with_timezone(&chrono::Utc) >= every)
                    .unwrap_or(true)
        }
    };
    if due {
        app.store
            .checkpoint(
                "scheduled",
                app.settings.audit.checkpoint_channel.as_deref(),
            )
            .await?;
    }
    Ok(())
}

async fn expire_due(app: &Arc<App>) -> Result<(), StoreError> {
    let mut tx = app.store.begin().await?;
    let due = tx.due_for_expiry(crate::clock::now()).await?;
    if due.is_empty() {
        return Ok(());
    }
    let mut expired = Vec::new();
    for request in due {
        if gate::reactions::expire_in(&mut tx, &request).await? {
            gate::execute::queue_refresh(
                &mut tx,
                &app.settings.approval,
                request.id,
                &format!("{} expired unanswered; nothing was done.", request.label()),
            )
            .await?;
            expired.push(request);
        }
    }
    tx.commit().await?;
    for request in expired {
        tracing::info!(action_id = %request.label(), "expired");
    }
    Ok(())
}

/// Removes timed blocks whose time is up from WAF, records it and says so where the block
/// was asked for. A block claimed but not finished (a crash) is retried: removing an
/// address that is already gone changes nothing.
async fn lift_due_blocks(app: &Arc<App>) -> Result<(), StoreError> {
    let due = app
        .store
        .claim::<Block>(crate::clock::now(), Liveness::Heartbeat)
        .await?;
    for block in due {
        let set_ref = WafIpSetRef {
            name: block.set_name.clone(),
            id: block.set_id.clone(),
        };
        let scope = block.scope;
        let written = match blocklist::modify(
            app.aws.waf(scope),
            &set_ref,
            scope,
            &[],
            std::slice::from_ref(&block.cidr),
        )
        .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(cidr = %block.cidr, error = %e, "could not lift a timed block; will retry");
                continue;
            }
        };
        let mut tx = app.store.begin().await?;
        match tx.finish_lift(block.id).await? {
            None => {}
            // A newer block of the address was approved while this one was being lifted:
            // it keeps the address blocked.
            Some(state) if state == "superseded" => {
                drop(tx);
                keep_newer_block(app, &block, &set_ref).await?;
                continue;
            }
            // Unblocked meanwhile (the address is out, as asked), or taken over by a replica
            // that ends the lift itself.
            Some(_) => {
                drop(tx);
                continue;
            }
        }
        tx.append(
            NewEvent::new(
                EventKind::WafLifted,
                "drbot",
                &block.channel,
                format!(
                    "timed block of {} lifted from {}",
                    block.cidr, block.set_name
                ),
            )
            .detail(json!({
                "cidr": block.cidr,
                "ip_set": block.set_name,
                "operation": "UpdateIPSet",
                "aws_request_id": written.request_id,
                "blocked_by": block.requested_by,
                "reason": block.reason,
            }))
            .incident(block.incident.clone()),
        )
        .await?;
        let text = format!(
            ":unlock: Lifted the timed block of `{}` in `{}` (blocked by <@{}>, reason: {}){}.",
            block.cidr,
            block.set_name,
            block.requested_by,
            block
                .reason
                .as_deref()
                .map_or_else(|| "none given".to_string(), crate::slack::text::escape),
            written
                .request_id
                .as_deref()
                .map(|id| format!("; AWS request id `{id}`"))
                .unwrap_or_default()
        );
        tx.send_slack(Outgoing::post(&block.channel, text)).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// After lifting `block`, a newer block of its address turned out to have been approved
/// meanwhile: the address goes back into the set, and the channel is told either way.
async fn keep_newer_block(
    app: &Arc<App>,
    block: &Block,
    set_ref: &WafIpSetRef,
) -> Result<(), StoreError> {
    let again = blocklist::modify(
        app.aws.waf(block.scope),
        set_ref,
        block.scope,
        std::slice::from_ref(&block.cidr),
        &[],
    )
    .await;
    let (text, detail) = match &again {
        Ok(written) => (
            format!(
                ":lock: `{}` stays blocked in `{}`: a newer block of it was approved while its timed block was being lifted{}.",
                block.cidr,
                block.set_name,
                written
                    .request_id
                    .as_deref()
                    .map(|id| format!(" (put back; AWS request id `{id}`)"))
                    .unwrap_or_default()
            ),
            json!({"cidr": block.cidr, "ip_set": block.set_name, "operation": "UpdateIPSet", "aws_request_id": written.request_id, "kept_for": "a newer block"}),
        ),
        Err(e) => (
            format!(
                ":warning: `{}` may NOT be blocked in `{}`: its timed block was lifted while a newer block of it was approved, and putting it back failed ({e}). Block it again with `/dr block-ip {}`.",
                block.cidr, block.set_name, block.cidr
            ),
            json!({"cidr": block.cidr, "ip_set": block.set_name, "operation": "UpdateIPSet", "error": e.to_string()}),
        ),
    };
    let mut tx = app.store.begin().await?;
    tx.append(
        NewEvent::new(EventKind::WafLifted, "drbot", &block.channel, text.clone())
            .detail(detail)
            .incident(block.incident.clone()),
    )
    .await?;
    tx.send_slack(Outgoing::post(&block.channel, text)).await?;
    tx.commit().await
}

/// Overdue follow-ups: the ops channel (the first command channel, else the follow-up's own)
/// is told once a day per follow-up while it stays open, claimed in the store first.
async fn remind_followups(app: &Arc<App>) -> Result<(), StoreError> {
    let today = crate::clock::now().format("%Y-%m-%d").to_string();
    for f in app.store.overdue_followups(&today).await? {
        let channel = app
            .settings
            .slack
            .command_channels
            .first()
            .cloned()
            .unwrap_or_else(|| f.channel.clone());
        let mut tx = app.store.begin().await?;
        if !tx.claim_followup_reminder(f.id, &today).await? {
            continue;
        }
        tx.append(
            NewEvent::new(
                EventKind::FollowupOverdue,
                "drbot",
                &channel,
                format!(
                    "{} is overdue (due {})",
                    f.label(),
                    f.due.clone().unwrap_or_default()
                ),
            )
            .detail(json!({"followup": f.label(), "due": f.due, "owner": f.owner}))
            .incident(f.incident.clone()),
        )
        .await?;
        tx.send_slack(Outgoing::post(
            &channel,
            format!(
                ":alarm_clock: Follow-up overdue: {}. `/dr followup done {}` once it is done.",
                crate::actions::followup::line(&f),
                f.label()
            ),
        ))
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The plan's communication rules for open incidents: a reminder when no status update
/// was made for `incidents.reminder_interval`, and the users' outage notice once the
/// incident has lasted `incidents.user_notice_after`. Each is claimed in the store before
/// it is posted, so a restart neither skips nor repeats it.
async fn remind_incidents(app: &Arc<App>) -> Result<(), StoreError> {
    let settings = &app.settings.incidents;
    let now = crate::clock::now();
    for incident in app.store.open_incidents().await? {
        let Some(scenario) = app.scenarios.get(&incident.scenario).cloned() else {
            continue;
        };
        let quiet_since = incident
            .last_reminder_at
            .map_or(incident.last_update_at, |r| r.max(incident.last_update_at));
        let interval = chrono::Duration::seconds(settings.reminder_interval.as_secs() as i64);
        if now - quiet_since >= interval {
            let silent =
                crate::duration::human(now - incident.last_update_at.max(incident.started_at));
            let told = match incident.users_told_at {
                Some(t) => format!(
                    " Users were last told {} ago ({} UTC).",
                    crate::duration::human(now - t),
                    t.format("%H:%M")
                ),
                None if app.notify.any() => {
                    " Users have not been told yet: `/dr notify users`.".to_string()
                }
                None => String::new(),
            };
            let text = format!(
                ":bell: Incident *{}*: no status update for {silent}. The plan asks for one every {}: `/dr incident update <what is happening>`.{told}",
                incident.id, settings.reminder_interval
            );
            let mut tx = app.store.begin().await?;
            if tx.claim_reminder(&incident).await? {
                tx.append(
                    NewEvent::new(
                        EventKind::IncidentReminder,
                        "drbot",
                        &incident.channel_id,
                        format!("reminder: no status update for {silent}"),
                    )
                    .incident(Some(incident.id.clone())),
                )
                .await?;
                tx.send_slack(Outgoing::post(&incident.channel_id, text))
                    .await?;
                tx.commit().await?;
            }
        }
        let notice_after = chrono::Duration::seconds(settings.user_notice_after.as_secs() as i64);
        let drafts = app.notify.any();
        // A drill tells no users anything: with somewhere to publish, its notice is drafted
        // (marked DRILL, never published) so the communication is rehearsed too.
        if (drafts || !incident.drill)
            && incident.notice_at.is_none()
            && now - incident.started_at >= notice_after
        {
            let mut tx = app.store.begin().await?;
            if tx.claim_notice(&incident.id).await? {
                let prepared = if drafts {
                    "drafted for an officer's approval"
                } else {
                    "prepared"
                };
                let notice = (!drafts).then(|| {
                    crate::actions::incident::outage_notice(&incident, &scenario, settings)
                });
                tx.append(
                    NewEvent::new(
                        EventKind::IncidentNotice,
                        "drbot",
                        &incident.channel_id,
                        format!(
                            "outage over {}: users' service-interruption notice {prepared}",
                            settings.user_notice_after
                        ),
                    )
                    .detail(json!({"notice": notice, "drafted": drafts}))
                    .incident(Some(incident.id.clone())),
                )
                .await?;
                if drafts {
                    draft_notice(&mut tx, &incident, "outage").await?;
                } else {
                    let text = format!(
                        ":loudspeaker: Incident *{}* has lasted {}. The plan says users must be told; here is the notice, ready to send:\n```\n{}\n```",
                        incident.id,
                        settings.user_notice_after,
                        notice.unwrap_or_default()
                    );
                    tx.send_slack(Outgoing::post(&incident.channel_id, text))
                        .await?;
                }
                tx.commit().await?;
                app.jobs.notify_one();
            }
        }
    }
    Ok(())
}

/// Queues in `tx` the draft of the users' notice `template` for `incident`, requested by
/// drbot: it is put to the officers like any `/dr notify users`, never published by itself.
pub async fn draft_notice(
    tx: &mut crate::store::StoreTx<'_>,
    incident: &crate::store::Incident,
    template: &str,
) -> Result<(), StoreError> {
    Work::Plan {
        text: format!("notify users --template {template}"),
        user: SCHEDULER.to_string(),
        channel: incident.channel_id.clone(),
        response_url: String::new(),
        incident: Some(incident.id.clone()),
        scheduled: false,
    }
    .enqueue(tx)
    .await
    .map(|_| ())
}

async fn run_job(app: &Arc<App>, job: Job) {
    let work = match Work::of(&job) {
        Ok(work) => work,
        Err(unreadable) => return drop_unreadable(app, &job, &unreadable).await,
    };
    let span = tracing::info_span!("job", id = job.id, kind = work.kind());
    // Work asked for in the web console: every event it appends says so, and who.
    let via = crate::store::via_of(work.response_url());
    let done = crate::store::VIA
        .scope(via, async {
            match work {
                Work::Plan {
                    text,
                    user,
                    channel,
                    response_url,
                    incident,
                    scheduled,
                } => {
                    let asker = Asker {
                        user,
                        channel,
                        response_url,
                        incident,
                    };
                    plan(app, job.claim(), &asker, &text, scheduled)
                        .instrument(span)
                        .await
                }
                Work::IncidentOpen {
                    scenario,
                    title,
                    drill,
                    user,
                    channel,
                    response_url,
                    then,
                    alarm,
                } => {
                    // The command that asked for the incident, planned in its channel once it is
                    // open: queued in the transaction that opens it.
                    let plan = |incident: &str, channel: &str| {
                        let work = Work::Plan {
                            text: then.clone().unwrap_or_default(),
                            user: user.clone(),
                            channel: channel.to_string(),
                            response_url: response_url.clone(),
                            incident: Some(incident.to_string()),
                            scheduled: false,
                        };
                        (work.kind(), serde_json::to_value(&work).unwrap_or_default())
                    };
                    let then_plan: Option<actions::incident_open::Then<'_>> =
                        then.is_some().then_some(&plan as _);
                    let open = actions::incident_open::OpenIncident {
                        scenario,
                        title,
                        user: user.clone(),
                        channel,
                        response_url: response_url.clone(),
                        drill,
                        alarm,
                    };
                    actions::incident_open::run(app, &open, job.claim(), then_plan)
                        .instrument(span)
                        .await
                }
            }
        })
        .await;
    match done {
        Ok(()) => {}
        // Taken over while this replica's lease had lapsed: the replica that took it runs
        // it, and nothing this run wrote was kept.
        Err(e @ StoreError::Fenced(_)) => {
            tracing::warn!(error = %e, job = job.id, "a job was taken over by another replica")
        }
        Err(e) => {
            tracing::error!(error = %e, job = job.id, "a job failed; it runs again at the next start")
        }
    }
}

/// A job that does not read back (written by another version, or damaged): recorded and
/// set aside, never run with guessed fields.
async fn drop_unreadable(app: &Arc<App>, job: &Job, unreadable: &jobs::UnreadableJob) {
    tracing::error!(error = %unreadable, "set aside an unreadable job");
    let dropped = async {
        let mut tx = app.store.begin().await?;
        tx.append(
            NewEvent::new(
                EventKind::JobUnreadable,
                "drbot",
                "",
                unreadable.to_string(),
            )
            .detail(json!({"job": job.id, "kind": job.kind})),
        )
        .await?;
        tx.finish_job(job.claim()).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = dropped {
        tracing::error!(error = %e, job = job.id, "could not set aside an unreadable job");
    }
}

/// Plans one command against AWS and opens its approval request (or, for a command
/// whose policy is `none`, runs it at once), or says why not.
async fn plan(
    app: &Arc<App>,
    job: JobClaim,
    asker: &Asker,
    text: &str,
    scheduled: bool,
) -> Result<(), StoreError> {
    let cmd = match router::parse(text, &app.commands, &app.settings) {
        Ok(cmd) => cmd,
        Err(refusal) => {
            return refuse(
                app,
                job,
                asker,
                text,
                &refusal.reason,
                refusal.usage.as_deref(),
            )
            .await
        }
    };
    let usage = cmd.def.usage.clone();
    let action = cmd.def.action;
    if action == ActionKind::PlanRun && cmd.flag("dry-run").is_some() {
        // Plans every step and reports; nothing is asked or changed.
        let report = actions::plan_run::dry_run(app, &cmd, asker).await;
        let mut tx = app.store.begin().await?;
        tx.finish_job(job).await?;
        tx.send_slack(answer(asker, report)).await?;
        return tx.commit().await;
    }
    let planned = match actions::plan(app, &cmd, asker).await {
        Ok(planned) => planned,
        Err(PlanFailure::Invalid(why)) => {
            return refuse(app, job, asker, text, &why, Some(&usage)).await
        }
        Err(PlanFailure::Aws(e)) => {
            let mut tx = app.store.begin().await?;
            tx.append(
                NewEvent::new(EventKind::AwsError, &asker.user, &asker.channel, format!("planning `/dr {text}`: {e}"))
                    .detail(json!({"operation": e.operation, "resource": e.resource, "request_id": e.request_id, "throttled": e.throttled})),
            )
            .await?;
            tx.finish_job(job).await?;
            let hint = if e.throttled {
                " AWS is throttling; try again in a minute."
            } else if e.message == crate::aws::NO_ANSWER {
                " Once it answers again, the same command works."
            } else {
                ""
            };
            tx.send_slack(answer(
                asker,
                format!(
                    ":warning: Could not plan `/dr {}`: {}. Nothing was changed.{hint}",
                    crate::slack::text::escape(text),
                    crate::slack::text::escape(&e.to_string())
                ),
            ))
            .await?;
            tx.commit().await?;
            return Ok(());
        }
    };
    let command = text.trim();
    // Only drbot's own schedule queues `scheduled` jobs; what it runs is approved by the
    // configuration. Everything typed in Slack goes through the command's approval.
    let scheduled = scheduled
        && asker.user == SCHEDULER
        && matches!(
            action,
            ActionKind::RdsRestoreTest | ActionKind::RdsSnapshotCopy
        );
    let approval = if scheduled {
        Approval::None
    } else {
        cmd.approval()
    };
    let request = gate::request::open(app, asker, command, planned, Some(job), approval).await?;
    if approval == Approval::None {
        // Following a snapshot can take an hour: it runs beside the job worker.
        let span = tracing::info_span!("action", action_id = %request.label());
        tokio::spawn(actions::run(app.clone(), request.id).instrument(span));
    }
    Ok(())
}

async fn refuse(
    app: &Arc<App>,
    job: JobClaim,
    asker: &Asker,
    text: &str,
    why: &str,
    usage: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = app.store.begin().await?;
    tx.append(
        NewEvent::new(
            EventKind::CommandRefused,
            &asker.user,
            &asker.channel,
            format!("/dr {text} (refused: {why})"),
        )
        .detail(json!({"reason": why, "text": text, "stage": "plan"})),
    )
    .await?;
    tx.finish_job(job).await?;
    let mut reply = format!(
        ":no_entry: {}. Nothing was changed.",
        crate::slack::text::escape(why)
    );
    if let Some(usage) = usage {
        reply.push_str(&format!(
            "\nUsage: `/dr {}`",
            crate::slack::text::escape(usage)
        ));
    }
    tx.send_slack(answer(asker, reply)).await?;
    tx.commit().await
}

/// The answer to whoever asked: through `response_url`, or in the channel for drbot's own
/// schedule (no slash command, so no `response_url`).
fn answer(asker: &Asker, text: String) -> Outgoing {
    if asker.response_url.is_empty() {
        Outgoing::post(&asker.channel, text)
    } else {
        Outgoing::Respond {
            url: asker.response_url.clone(),
            text,
        }
    }
}
