//! Disaster scenarios of the DR plan (`commands/scenarios/*.toml`): title, impact, RTO,
//! RPO and the recovery steps as a checklist, each step naming the `/dr` command that
//! performs it where one exists. An operator adds a scenario by adding a file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::router::{CommandSet, DefinitionError};

pub mod plan;

pub use plan::{Mode, Plan, PlanStep, StepApproval};

/// An RTO or RPO target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A duration in seconds (0 allowed: "0 hours (git)").
    Within(u64),
    /// "Immediate containment": no numeric clock.
    Immediate,
    /// Not applicable (N/A).
    None,
}

/// A scenario's RTO or RPO that is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a target: write e.g. 4h, 30m, 0s, immediate or none")]
pub struct NotATarget(String);

impl Target {
    fn parse(raw: &str) -> Result<Self, NotATarget> {
        let not_a_target = || NotATarget(raw.to_string());
        match raw.trim() {
            "none" | "n/a" => Ok(Target::None),
            "immediate" => Ok(Target::Immediate),
            other => {
                let split = other
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(other.len());
                let (n, unit) = other.split_at(split);
                let n: u64 = n.parse().map_err(|_| not_a_target())?;
                let factor = match unit {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86_400,
                    _ => return Err(not_a_target()),
                };
                // At most ten years, like every duration drbot takes: resolutions and
                // reports count a target into a date.
                n.checked_mul(factor)
                    .filter(|secs| *secs <= crate::duration::LONGEST.as_secs())
                    .map(Target::Within)
                    .ok_or_else(not_a_target)
            }
        }
    }

    pub fn seconds(self) -> Option<u64> {
        match self {
            Target::Within(s) => Some(s),
            _ => None,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Target::Within(s) => crate::duration::human(chrono::Duration::seconds(s as i64)),
            Target::Immediate => "immediate".to_string(),
            Target::None => "n/a".to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    id: String,
    title: String,
    impact: String,
    rto: String,
    #[serde(default)]
    rto_note: Option<String>,
    rpo: String,
    #[serde(default)]
    rpo_note: Option<String>,
    steps: Vec<Step>,
    /// The recovery as steps `/dr run` executes (see [`plan`]).
    #[serde(default)]
    plan: Option<plan::PlanFile>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub text: String,
    /// The `/dr` command that performs the step, when one exists.
    #[serde(default)]
    pub command: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub impact: String,
    pub rto: Target,
    pub rto_note: Option<String>,
    pub rpo: Target,
    pub rpo_note: Option<String>,
    pub steps: Vec<Step>,
    /// What `/dr run <id>` executes, when the scenario has a plan.
    pub plan: Option<Plan>,
}

impl Scenario {
    pub fn rto_text(&self) -> String {
        with_note(self.rto, self.rto_note.as_deref())
    }

    pub fn rpo_text(&self) -> String {
        with_note(self.rpo, self.rpo_note.as_deref())
    }
}

fn with_note(target: Target, note: Option<&str>) -> String {
    match note {
        Some(n) => format!("{} ({n})", target.describe()),
        None => target.describe(),
    }
}

/// Every scenario, by id.
#[derive(Debug, Clone, Default)]
pub struct ScenarioSet {
    by_id: BTreeMap<String, Arc<Scenario>>,
}

impl ScenarioSet {
    /// `scenarios/` of the embedded commands.
    pub fn embedded(commands: &CommandSet) -> Result<Self, DefinitionError> {
        let mut files = Vec::new();
        if let Some(dir) = crate::router::definition::EMBEDDED.get_dir("scenarios") {
            for f in dir
                .files()
                .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
            {
                files.push((
                    format!("commands/{}", f.path().display()),
                    f.contents_utf8().unwrap_or_default().to_string(),
                ));
            }
        }
        Self::from_files(files, commands)
    }

    /// `DIR/scenarios/*.toml` for `--commands DIR`.
    pub fn from_dir(dir: &Path, commands: &CommandSet) -> Result<Self, DefinitionError> {
        let path = dir.join("scenarios");
        let mut files = Vec::new();
        let entries = std::fs::read_dir(&path).map_err(|e| DefinitionError {
            file: path.display().to_string(),
            message: format!("cannot read the scenarios directory: {e}"),
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&p).map_err(|e| DefinitionError {
                    file: p.display().to_string(),
                    message: e.to_string(),
                })?;
                files.push((p.display().to_string(), text));
            }
        }
        Self::from_files(files, commands)
    }

    pub fn from_files(
        mut files: Vec<(String, String)>,
        commands: &CommandSet,
    ) -> Result<Self, DefinitionError> {
        files.sort();
        let mut by_id = BTreeMap::new();
        for (file, text) in files {
            let err = |message: String| DefinitionError {
                file: file.clone(),
                message,
            };
            let raw: ScenarioFile = toml::from_str(&text)
                .map_err(|e| err(e.message().replace('\n', " ").trim().to_string()))?;
            if raw.id.is_empty()
                || !raw
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(err(format!(
                    "id '{}' must be lowercase letters, digits and hyphens",
                    raw.id
                )));
            }
            let stem = Path::new(&file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != raw.id {
                return Err(err(format!(
                    "id '{}' must match the file name ({stem}.toml)",
                    raw.id
                )));
            }
            if raw.steps.is_empty() {
                return Err(err(
                    "a scenario needs at least one recovery step".to_string()
                ));
            }
            for step in &raw.steps {
                if let Some(command) = &step.command {
                    if commands.get(command).is_none() {
                        return Err(err(format!(
                            "step '{}' names `/dr {command}`, which is not a command",
                            step.text
                        )));
                    }
                }
            }
            let plan = match raw.plan {
                Some(p) => Some(plan::read(p, commands).map_err(err)?),
                None => None,
            };
            let scenario = Scenario {
                plan,
                rto: Target::parse(&raw.rto).map_err(|m| err(format!("rto: {m}")))?,
                rpo: Target::parse(&raw.rpo).map_err(|m| err(format!("rpo: {m}")))?,
                id: raw.id.clone(),
                title: raw.title,
                impact: raw.impact,
                rto_note: raw.rto_note,
                rpo_note: raw.rpo_note,
                steps: raw.steps,
            };
            if by_id.insert(raw.id.clone(), Arc::new(scenario)).is_some() {
                return Err(err(format!("scenario '{}' is defined twice", raw.id)));
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Scenario>> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Scenario>> {
        self.by_id.values()
    }

    pub fn ids(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }

    /// The tightest RPO among the scenarios whose recovery works on database `database`:
    /// a plan step running a database command on it (`snapshot main`, `restore main …`), or
    /// a checklist step naming a database command (which any database may need): `(scenario,
    /// seconds)`. What a restore's real RPO is held to.
    pub fn database_rpo(&self, database: &str) -> Option<(String, u64)> {
        const ON_DATABASES: &[&str] =
            &["snapshot", "restore", "pitr", "cutover", "backups", "drill"];
        let works_on = |s: &Scenario| match &s.plan {
            Some(plan) => plan
                .steps
                .iter()
                .filter_map(|step| step.run.as_deref())
                .any(|run| {
                    let words: Vec<&str> = run.split_whitespace().collect();
                    words.first().is_some_and(|w| ON_DATABASES.contains(w))
                        && words.contains(&database)
                }),
            None => s
                .steps
                .iter()
                .filter_map(|step| step.command.as_deref())
                .any(|c| {
                    c.split_whitespace()
                        .next()
                        .is_some_and(|w| ON_DATABASES.contains(&w))
                }),
        };
        self.all()
            .filter(|s| works_on(s))
            .filter_map(|s| Some((s.id.clone(), s.rpo.seconds()?)))
            .min_by_key(|(_, secs)| *secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_databases_rpo_is_the_tightest_of_the_scenarios_that_work_on_it() {
        let commands = CommandSet::embedded().unwrap();
        let set = ScenarioSet::embedded(&commands).unwrap();
        // region-failure's plan snapshots and restores `main`; db-corruption's checklist
        // restores (any database): both 1 h. ddos and code-corruption never touch one.
        let (scenario, secs) = set.database_rpo("main").unwrap();
        assert_eq!(secs, 3600);
        assert!(["region-failure", "db-corruption"].contains(&scenario.as_str()));
        assert_eq!(
            set.database_rpo("orders").map(|(_, s)| s),
            Some(3600),
            "by the checklist"
        );
    }

    #[test]
    fn targets_read_as_the_plan_writes_them_and_anything_else_is_refused() {
        assert_eq!(Target::parse("4h"), Ok(Target::Within(4 * 3600)));
        assert_eq!(Target::parse(" 30m "), Ok(Target::Within(1800)));
        assert_eq!(Target::parse("0s"), Ok(Target::Within(0)));
        assert_eq!(Target::parse("immediate"), Ok(Target::Immediate));
        assert_eq!(Target::parse("n/a"), Ok(Target::None));
        assert_eq!(Target::parse("3650d"), Ok(Target::Within(3650 * 86_400)));
        for bad in [
            "4 hours",
            "h",
            "-1h",
            "4w",
            "",
            "9999999999999999999h",
            "3651d",
        ] {
            assert_eq!(
                Target::parse(bad).unwrap_err().to_string(),
                format!("'{bad}' is not a target: write e.g. 4h, 30m, 0s, immediate or none")
            );
        }
    }
}
