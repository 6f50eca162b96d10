//! Plan runs (`/dr run <scenario>`) and their steps. Every change of a run or a step is a
//! conditional update from the states it may leave: of two replicas driving the same run,
//! exactly one moves a step, so a step starts (and its request is created) once.

use sqlx::Row;

use super::statement::args;
use super::{Store, StoreError, StoreTx};

/// A run to create, with its steps.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub request_id: i64,
    pub scenario: String,
    pub mode: String,
    pub stamp: String,
    pub channel: String,
    pub incident: Option<String>,
    pub requester: String,
    pub approved_by: String,
    pub steps: Vec<NewRunStep>,
}

#[derive(Debug, Clone)]
pub struct NewRunStep {
    pub step: String,
    pub text: String,
    pub command: Option<String>,
    pub block: i64,
    /// `officer` when it is approved again when reached.
    pub approval: String,
    pub timeout_secs: i64,
    /// Planned when reached (it reads what an earlier step made).
    pub when_reached: bool,
    /// The approved plan (JSON) and its hash, when it was planned with the run.
    pub plan: Option<String>,
    pub plan_hash: Option<String>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub request_id: i64,
    pub scenario: String,
    pub mode: String,
    pub stamp: String,
    pub channel: String,
    pub incident: Option<String>,
    pub requester: String,
    pub approved_by: String,
    /// `running`, `paused`, `done` or `aborted`.
    pub state: String,
    pub reason: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub recovery_secs: Option<i64>,
}

impl RunRow {
    /// `R-<n>`, as users see it.
    pub fn label(&self) -> String {
        format!("R-{}", self.id)
    }

    pub fn is_over(&self) -> bool {
        matches!(self.state.as_str(), "done" | "aborted")
    }
}

/// A step as stored, with the state of its current request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub run_id: i64,
    pub idx: i64,
    pub step: String,
    pub text: String,
    pub command: Option<String>,
    pub block: i64,
    pub approval: String,
    pub timeout_secs: i64,
    pub when_reached: bool,
    pub plan: Option<String>,
    pub plan_hash: Option<String>,
    pub summary: Option<String>,
    /// `waiting`, `running`, `done`, `failed`, `skipped`.
    pub state: String,
    pub request_id: Option<i64>,
    pub attempt: i64,
    /// The next start puts the step to an officer again (its plan changed since approval).
    pub own_approval: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    /// The state and outcome of `request_id`.
    pub request_state: Option<String>,
    pub request_outcome: Option<String>,
}

const RUN_COLUMNS: &str = "id, request_id, scenario, mode, stamp, channel, incident, requester, approved_by, state, reason, created_at, started_at, finished_at, recovery_secs";

fn read_run(r: &sqlx::any::AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: r.get(0),
        request_id: r.get(1),
        scenario: r.get(2),
        mode: r.get(3),
        stamp: r.get(4),
        channel: r.get(5),
        incident: r.get(6),
        requester: r.get(7),
        approved_by: r.get(8),
        state: r.get(9),
        reason: r.get(10),
        created_at: r.get(11),
        started_at: r.get(12),
        finished_at: r.get(13),
        recovery_secs: r.get(14),
    })
}

const STEP_COLUMNS: &str = "s.run_id, s.idx, s.step, s.text, s.command, s.block, s.approval, s.timeout_secs, s.when_reached, s.plan, s.plan_hash, s.summary, s.state, s.request_id, s.attempt, s.own_approval, s.started_at, s.finished_at, s.outcome, r.state, r.outcome";

fn read_step(r: &sqlx::any::AnyRow) -> Result<StepRow, StoreError> {
    Ok(StepRow {
        run_id: r.get(0),
        idx: r.get(1),
        step: r.get(2),
        text: r.get(3),
        command: r.get(4),
        block: r.get(5),
        approval: r.get(6),
        timeout_secs: r.get(7),
        when_reached: r.get::<i64, _>(8) != 0,
        plan: r.get(9),
        plan_hash: r.get(10),
        summary: r.get(11),
        state: r.get(12),
        request_id: r.get(13),
        attempt: r.get(14),
        own_approval: r.get::<i64, _>(15) != 0,
        started_at: r.get(16),
        finished_at: r.get(17),
        outcome: r.get(18),
        request_state: r.get(19),
        request_outcome: r.get(20),
    })
}

fn steps_sql(filter: &str) -> String {
    format!("SELECT {STEP_COLUMNS} FROM run_steps s LEFT JOIN requests r ON r.id = s.request_id WHERE {filter} ORDER BY s.run_id, s.idx")
}

/// How a step moves: its new state and what changes with it.
#[derive(Debug, Clone, Default)]
pub struct StepMove {
    pub to: &'static str,
    pub request_id: Option<i64>,
    pub outcome: Option<String>,
    /// Sets `started_at` (the first start only) and counts an attempt.
    pub start: bool,
    /// Sets `finished_at`.
    pub finish: bool,
    /// The plan it runs with, when planned when reached.
    pub plan: Option<(String, String, String)>,
    pub own_approval: Option<bool>,
}

impl StoreTx<'_> {
    /// Creates run `new` (at most one per approval request) with its steps, all waiting.
    pub async fn create_run(&mut self, new: &NewRun) -> Result<RunRow, StoreError> {
        let now = crate::clock::now_rfc3339();
        let sql = format!(
            "INSERT INTO runs (request_id, scenario, mode, stamp, channel, incident, requester, approved_by, state, created_at, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9, $9) RETURNING {RUN_COLUMNS}"
        );
        let args = args![
            new.request_id,
            new.scenario.as_str(),
            new.mode.as_str(),
            new.stamp.as_str(),
            new.channel.as_str(),
            new.incident.clone(),
            new.requester.as_str(),
            new.approved_by.as_str(),
            now
        ];
        let run = self
            .fetch("creating a plan run", sql, args, read_run)
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotWritten("no plan run was created".into()))?;
        for (idx, s) in new.steps.iter().enumerate() {
            let sql = "INSERT INTO run_steps (run_id, idx, step, text, command, block, approval, timeout_secs, when_reached, plan, plan_hash, summary, state, attempt, own_approval)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'waiting', 0, 0)";
            let args = args![
                run.id,
                idx as i64,
                s.step.as_str(),
                s.text.as_str(),
                s.command.clone(),
                s.block,
                s.approval.as_str(),
                s.timeout_secs,
                s.when_reached,
                s.plan.clone(),
                s.plan_hash.clone(),
                s.summary.clone()
            ];
            self.write("recording a plan step", sql, args).await?;
        }
        Ok(run)
    }

    /// Moves step `idx` of run `run` from one of `from` as `m` says; true when this call
    /// moved it.
    pub async fn move_step(
        &mut self,
        run: i64,
        idx: i64,
        from: &[&str],
        m: StepMove,
    ) -> Result<bool, StoreError> {
        let now = crate::clock::now_rfc3339();
        let (plan, hash, summary) = match m.plan {
            Some((p, h, s)) => (Some(p), Some(h), Some(s)),
            None => (None, None, None),
        };
        let states = from
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        // A step starts only while its run runs (a sibling that failed first paused it).
        let running = if m.start {
            " AND EXISTS (SELECT 1 FROM runs WHERE runs.id = $1 AND runs.state = 'running')"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE run_steps SET state = $3,
                request_id = COALESCE($4, request_id),
                outcome = $5,
                started_at = CASE WHEN $6 = 1 THEN COALESCE(started_at, $7) ELSE started_at END,
                attempt = attempt + $6,
                finished_at = CASE WHEN $8 = 1 THEN $7 ELSE finished_at END,
                plan = COALESCE($9, plan), plan_hash = COALESCE($10, plan_hash), summary = COALESCE($11, summary),
                own_approval = COALESCE($12, own_approval)
             WHERE run_id = $1 AND idx = $2 AND state IN ({states}){running}"
        );
        let args = args![
            run,
            idx,
            m.to,
            m.request_id,
            m.outcome,
            i64::from(m.start),
            now,
            i64::from(m.finish),
            plan,
            hash,
            summary,
            m.own_approval.map(i64::from)
        ];
        Ok(self.execute("moving a plan step", sql, args).await? == 1)
    }

    /// Moves run `run` from one of `from` to `to` with `reason`; `finish` records when it
    /// ended and the measured recovery time. True when this call moved it.
    pub async fn move_run(
        &mut self,
        run: i64,
        from: &[&str],
        to: &str,
        reason: Option<&str>,
        finish: Option<Option<i64>>,
    ) -> Result<bool, StoreError> {
        let states = from
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let (finished, recovery) = match finish {
            Some(recovery) => (Some(crate::clock::now_rfc3339()), recovery),
            None => (None, None),
        };
        let sql = format!(
            "UPDATE runs SET state = $2, reason = $3, finished_at = COALESCE($4, finished_at), recovery_secs = COALESCE($5, recovery_secs)
             WHERE id = $1 AND state IN ({states})"
        );
        let args = args![run, to, reason, finished, recovery];
        Ok(self.execute("moving a plan run", sql, args).await? == 1)
    }

    pub async fn plan_run(&mut self, id: i64) -> Result<Option<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        Ok(self
            .fetch("reading a plan run", sql, args![id], read_run)
            .await?
            .pop())
    }

    pub async fn run_steps(&mut self, run: i64) -> Result<Vec<StepRow>, StoreError> {
        let sql = steps_sql("s.run_id = $1");
        self.fetch("reading a plan run's steps", sql, args![run], read_step)
            .await
    }
}

impl Store {
    pub async fn plan_run(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        Ok(self
            .fetch("reading a plan run", &sql, args![id], read_run)
            .await?
            .pop())
    }

    /// The run an approval request started, if it did.
    pub async fn run_of_request(&self, request: i64) -> Result<Option<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE request_id = $1");
        let found = self.fetch("reading a plan run", &sql, args![request], read_run);
        Ok(found.await?.pop())
    }

    /// Runs that are not over (running or paused), oldest first; in `channel` when given.
    pub async fn unfinished_runs(&self, channel: Option<&str>) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE state IN ('running', 'paused') AND ($1 = '' OR channel = $1) ORDER BY id"
        );
        self.fetch(
            "listing plan runs",
            &sql,
            args![channel.unwrap_or("")],
            read_run,
        )
        .await
    }

    /// Runs the driver looks at: running or paused, and aborted ones whose steps still run
    /// (their ends are recorded; nothing new starts).
    pub async fn runs_to_drive(&self) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE state IN ('running', 'paused')
                OR (state = 'aborted' AND EXISTS (SELECT 1 FROM run_steps s WHERE s.run_id = runs.id AND s.state = 'running' AND s.request_id IS NOT NULL))
             ORDER BY id"
        );
        self.fetch("listing plan runs to drive", &sql, args![], read_run)
            .await
    }

    /// Every run created between `from` and `to` (RFC 3339), for reports and exports.
    pub async fn runs_between(&self, from: &str, to: &str) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE created_at >= $1 AND created_at < $2 ORDER BY id"
        );
        self.fetch("listing plan runs", &sql, args![from, to], read_run)
            .await
    }

    pub async fn run_steps(&self, run: i64) -> Result<Vec<StepRow>, StoreError> {
        let sql = steps_sql("s.run_id = $1");
        self.fetch("reading a plan run's steps", &sql, args![run], read_step)
            .await
    }
}
