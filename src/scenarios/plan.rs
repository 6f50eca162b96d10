//! A scenario's `[plan]`: its recovery as data that `/dr run <scenario>` executes. Steps run
//! in order; adjacent steps sharing a `parallel` group run side by side. A step is an
//! existing `/dr` command with its arguments (`run`), or a manual step that waits for a
//! person (`/dr run done <step>`).
//!
//! ```toml
//! [[plan.steps]]
//! id = "restore"
//! run = "restore main --region backup --snapshot latest --as aifai-db-dr-{run}"
//! uses = ["copy"]          # planned again when reached: it reads what `copy` made
//! parallel = "bring-up"    # side by side with the next step of the same group
//! approval = "officer"     # pauses for its own approval when reached
//! timeout = "2h"
//! modes = ["graceful"]     # default: both modes
//! ```
//!
//! `{run}` in a command is the run's stamp (UTC `yyyymmddhhmmss` of its planning and four
//! hex digits), so names a run creates are its own and the later steps can name them.

use serde::Deserialize;

use crate::router::CommandSet;

/// How a region failover treats the primary region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Take a fresh snapshot and copy it before restoring (the primary still answers).
    Graceful,
    /// Restore from the newest copy already in the backup region; never call the primary.
    Ungraceful,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Graceful, Mode::Ungraceful];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Graceful => "graceful",
            Mode::Ungraceful => "ungraceful",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Whose approval a step needs beyond the run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepApproval {
    /// The run's approval covers it.
    #[default]
    Run,
    /// An officer approves it again when it is reached.
    Officer,
}

/// The placeholder for the run's stamp in a step's command.
pub const RUN_PLACEHOLDER: &str = "{run}";

/// The default time a step may take (or wait for its own approval) before it fails.
pub const DEFAULT_TIMEOUT_SECS: u64 = 2 * 3600;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlanFile {
    pub steps: Vec<StepFile>,
    /// A scenario's default mode when the command names none.
    #[serde(default)]
    pub default_mode: Option<Mode>,
    /// `service <name>`: the recovery counts until that ECS service is stable.
    #[serde(default)]
    pub recovered_when: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepFile {
    pub id: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub parallel: Option<String>,
    #[serde(default)]
    pub approval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub modes: Option<Vec<String>>,
    #[serde(default)]
    pub uses: Vec<String>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    pub id: String,
    /// What the step does, in the plan's words.
    pub text: String,
    /// The `/dr` command (without `/dr`, `{run}` not yet filled in); `None` for a manual step.
    pub run: Option<String>,
    /// Steps with the same group that follow each other run side by side.
    pub parallel: Option<String>,
    pub approval: StepApproval,
    pub timeout_secs: u64,
    pub modes: Vec<Mode>,
    /// Earlier steps whose result this step reads: it is planned again when reached.
    pub uses: Vec<String>,
}

/// A scenario's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<PlanStep>,
    pub default_mode: Mode,
    /// The ECS service (by its name in drbot.toml) whose stability ends the recovery, when
    /// the scenario names one: the measured recovery runs until it holds.
    pub recovered_when: Option<String>,
}

impl Plan {
    /// The steps `mode` runs, each with the number of its block (steps of one block run side
    /// by side; blocks run in order).
    pub fn for_mode(&self, mode: Mode) -> Vec<(usize, &PlanStep)> {
        let mut out = Vec::new();
        let mut block = 0usize;
        let mut last_group: Option<&str> = None;
        for step in self.steps.iter().filter(|s| s.modes.contains(&mode)) {
            let group = step.parallel.as_deref();
            let joins = !out.is_empty() && group.is_some() && group == last_group;
            if !joins && !out.is_empty() {
                block += 1;
            }
            last_group = group;
            out.push((block, step));
        }
        out
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Control words of `/dr run` that a step id may not take (`/dr run done <step>` reads them).
const RESERVED: &[&str] = &[
    "pause",
    "resume",
    "abort",
    "retry-step",
    "skip-step",
    "done",
];

/// Reads a `[plan]` against the command definitions: what is wrong names the step.
pub(super) fn read(raw: PlanFile, commands: &CommandSet) -> Result<Plan, String> {
    if raw.steps.is_empty() {
        return Err("[plan] needs at least one step".to_string());
    }
    let mut steps = Vec::new();
    for s in raw.steps {
        let at = format!("[plan] step '{}'", s.id);
        if !valid_id(&s.id) {
            return Err(format!(
                "{at}: an id is lowercase letters, digits and hyphens"
            ));
        }
        if RESERVED.contains(&s.id.as_str()) {
            return Err(format!(
                "{at}: `{}` is a word of `/dr run`; name the step otherwise",
                s.id
            ));
        }
        for used in &s.uses {
            if used == &s.id || !steps.iter().any(|p: &PlanStep| &p.id == used) {
                return Err(format!(
                    "{at}: `uses = [\"{used}\"]` must name an earlier step"
                ));
            }
        }
        let run = match s.run {
            Some(run) => {
                let run = run.trim().trim_start_matches("/dr ").trim().to_string();
                let def = commands.resolve(&run).ok_or_else(|| {
                    format!("{at}: `/dr {run}` is not a command (`/dr help` lists them)")
                })?;
                if !def.action.changes_aws() {
                    return Err(format!(
                        "{at}: `/dr {}` changes nothing in AWS; a plan step runs a command that does (write a manual step with `text` instead)",
                        def.name
                    ));
                }
                Some(run)
            }
            None => None,
        };
        let text = match (s.text, &run) {
            (Some(t), _) if !t.trim().is_empty() => t.trim().to_string(),
            (_, Some(run)) => format!("/dr {run}"),
            _ => return Err(format!("{at}: a manual step (no `run`) needs its `text`")),
        };
        let approval = match s.approval.as_deref() {
            None | Some("run") | Some("none") => StepApproval::Run,
            Some("officer") => StepApproval::Officer,
            Some(other) => {
                return Err(format!(
                    "{at}: approval '{other}': write `officer` (approved again when reached) or leave it out (the run's approval covers it)"
                ))
            }
        };
        if approval == StepApproval::Officer && run.is_none() {
            return Err(format!(
                "{at}: a manual step changes nothing to approve; remove `approval`"
            ));
        }
        let timeout_secs = match s.timeout.as_deref() {
            None => DEFAULT_TIMEOUT_SECS,
            Some(t) => t
                .parse::<crate::duration::HumanDuration>()
                .map(|d| d.as_secs())
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{at}: timeout '{t}': write e.g. 30m or 2h"))?,
        };
        let modes = match s.modes {
            None => Mode::ALL.to_vec(),
            Some(list) => {
                let mut modes = Vec::new();
                for m in list {
                    modes.push(Mode::parse(&m).ok_or_else(|| {
                        format!("{at}: mode '{m}': write `graceful` or `ungraceful`")
                    })?);
                }
                if modes.is_empty() {
                    return Err(format!(
                        "{at}: `modes = []` runs it in no mode; remove the step or name a mode"
                    ));
                }
                modes
            }
        };
        // One id per mode: a step may have a graceful and an ungraceful version.
        if steps
            .iter()
            .any(|p: &PlanStep| p.id == s.id && p.modes.iter().any(|m| modes.contains(m)))
        {
            return Err(format!(
                "{at}: the id is used twice in one mode (give the versions of a step `modes` that do not overlap)"
            ));
        }
        if let Some(group) = &s.parallel {
            if !valid_id(group) {
                return Err(format!(
                    "{at}: parallel group '{group}' is lowercase letters, digits and hyphens"
                ));
            }
        }
        steps.push(PlanStep {
            id: s.id,
            text,
            run,
            parallel: s.parallel,
            approval,
            timeout_secs,
            modes,
            uses: s.uses,
        });
    }
    let recovered_when = match raw.recovered_when.as_deref().map(str::split_whitespace) {
        None => None,
        Some(mut words) => match (words.next(), words.next(), words.next()) {
            (Some("service"), Some(name), None) => Some(name.to_string()),
            _ => {
                return Err(format!(
                    "[plan] recovered_when '{}': write `service <name>` (an ECS service from drbot.toml that must be stable for the recovery to count as done)",
                    raw.recovered_when.unwrap_or_default()
                ))
            }
        },
    };
    let plan = Plan {
        steps,
        default_mode: raw.default_mode.unwrap_or(Mode::Graceful),
        recovered_when,
    };
    for mode in Mode::ALL {
        if plan.for_mode(mode).is_empty() {
            return Err(format!(
                "[plan] runs no step in {} mode: give a step `modes = [\"{}\"]` or leave `modes` out",
                mode.as_str(),
                mode.as_str()
            ));
        }
    }
    Ok(plan)
}

/// The stamp a plan's commands are read with when no run is planned (`check-config`,
/// readiness): a real stamp's shape, so the commands parse as they will.
pub const CHECK_STAMP: &str = "20260101000000-0000";

/// A step's command with the run's stamp filled in.
pub fn command_for(run: &str, stamp: &str) -> String {
    run.replace(RUN_PLACEHOLDER, stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, parallel: Option<&str>, modes: &[Mode]) -> PlanStep {
        PlanStep {
            id: id.into(),
            text: id.into(),
            run: None,
            parallel: parallel.map(str::to_string),
            approval: StepApproval::Run,
            timeout_secs: 60,
            modes: modes.to_vec(),
            uses: vec![],
        }
    }

    #[test]
    fn a_plan_that_cannot_run_is_refused_when_it_loads_naming_the_step() {
        let commands = CommandSet::embedded().expect("the shipped commands load");
        let read_toml = |steps: &str| {
            let raw: PlanFile = toml::from_str(steps).expect("toml");
            read(raw, &commands)
        };
        let cases = [
            (
                "[[steps]]\nid = \"a\"\nrun = \"explode everything\"",
                "step 'a': `/dr explode everything` is not a command",
            ),
            (
                "[[steps]]\nid = \"a\"\nrun = \"status\"",
                "changes nothing in AWS",
            ),
            (
                "[[steps]]\nid = \"A b\"\ntext = \"x\"",
                "lowercase letters, digits and hyphens",
            ),
            (
                "[[steps]]\nid = \"done\"\ntext = \"x\"",
                "is a word of `/dr run`",
            ),
            (
                "[[steps]]\nid = \"a\"\ntext = \"x\"\n[[steps]]\nid = \"a\"\ntext = \"y\"",
                "used twice",
            ),
            (
                "[[steps]]\nid = \"a\"\ntext = \"x\"\nuses = [\"b\"]",
                "must name an earlier step",
            ),
            ("[[steps]]\nid = \"a\"", "needs its `text`"),
            (
                "[[steps]]\nid = \"a\"\ntext = \"x\"\napproval = \"anyone\"",
                "approval 'anyone'",
            ),
            (
                "[[steps]]\nid = \"a\"\ntext = \"x\"\napproval = \"officer\"",
                "changes nothing to approve",
            ),
            (
                "[[steps]]\nid = \"a\"\nrun = \"snapshot main\"\ntimeout = \"soon\"",
                "timeout 'soon'",
            ),
            (
                "[[steps]]\nid = \"a\"\ntext = \"x\"\nmodes = [\"fast\"]",
                "mode 'fast'",
            ),
            (
                "[[steps]]\nid = \"a\"\ntext = \"x\"\nmodes = [\"graceful\"]",
                "runs no step in ungraceful mode",
            ),
            ("steps = []", "at least one step"),
            (
                "recovered_when = \"db up\"\n[[steps]]\nid = \"a\"\ntext = \"x\"",
                "recovered_when 'db up'",
            ),
        ];
        for (toml_text, why) in cases {
            let refused = read_toml(toml_text).expect_err(toml_text);
            assert!(refused.contains(why), "{toml_text}: {refused}");
        }
        let fine = read_toml("[[steps]]\nid = \"a\"\nrun = \"/dr snapshot main\"\n[[steps]]\nid = \"b\"\ntext = \"check\"\nuses = [\"a\"]")
            .expect("a plan with a command and a manual step");
        assert_eq!(fine.steps[0].run.as_deref(), Some("snapshot main"));
        assert_eq!(fine.steps[0].text, "/dr snapshot main");
        assert_eq!(fine.steps[0].timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn adjacent_steps_of_one_parallel_group_share_a_block_and_modes_filter_steps() {
        let both = &Mode::ALL[..];
        let plan = Plan {
            default_mode: Mode::Graceful,
            recovered_when: None,
            steps: vec![
                step("snapshot", None, &[Mode::Graceful]),
                step("restore", Some("up"), both),
                step("scale", Some("up"), both),
                step("dns", None, both),
                step("a", Some("x"), both),
                step("b", Some("y"), both),
            ],
        };
        let blocks = |mode| {
            plan.for_mode(mode)
                .into_iter()
                .map(|(b, s)| (b, s.id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            blocks(Mode::Graceful),
            vec![
                (0, "snapshot".to_string()),
                (1, "restore".into()),
                (1, "scale".into()),
                (2, "dns".into()),
                (3, "a".into()),
                (4, "b".into())
            ]
        );
        assert_eq!(blocks(Mode::Ungraceful)[0], (0, "restore".to_string()));
        assert_eq!(blocks(Mode::Ungraceful)[1], (0, "scale".to_string()));
    }
}
