//! `/dr notify users [--template outage|update|resolved] [text]` (SPEC §17): in an incident
//! channel, drafts the users' notice from the plan's template — the incident's facts filled
//! in, the requester's text as what we are doing — and puts to the officers exactly what
//! will be published where: the status page's incident (new or updated, status, impact,
//! components) and each email list (subject, recipients counted, the body word for word).
//! Only an approval publishes it (`gate::publish`), through the outbox; in a drill nothing
//! is published.
//!
//! Peers: Statuspage's REST API and SMTP, after approval (`notify`); no AWS call, no IAM.
//! Approval: officer (commands/notify-users.toml). Undo: another notice.

use std::sync::Arc;

use super::PlanFailure;
use crate::app::App;
use crate::config::Settings;
use crate::gate::publish::NoticePlan;
use crate::gate::request::Asker;
use crate::router::{Invalid, ParsedCommand};
use crate::scenarios::Scenario;
use crate::store::{Incident, Outgoing};

/// Which of the plan's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The plan's "Service Outage Notification".
    Outage,
    /// What changed since users were last told.
    Update,
    /// Service restored.
    Resolved,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Outage => "outage",
            Template::Update => "update",
            Template::Resolved => "resolved",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Template::Outage, Template::Update, Template::Resolved]
            .into_iter()
            .find(|t| t.as_str() == word)
    }

    /// The status page's status for it.
    fn page_status(self) -> &'static str {
        match self {
            Template::Outage => "investigating",
            Template::Update => "identified",
            Template::Resolved => "resolved",
        }
    }
}

pub struct Args {
    pub template: Option<Template>,
    pub text: Option<String>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<Args, Invalid> {
    let template = match cmd.flag_word("template") {
        None => None,
        Some(word) => Some(Template::parse(word).ok_or_else(|| {
            Invalid(format!(
                "`--template {}` is not a template; use `--template outage` (the first notice), `update` or `resolved`",
                crate::slack::text::inert(word)
            ))
        })?),
    };
    if settings.status_page.is_none() && settings.email.is_none() {
        return Err(Invalid(
            "there is nowhere to publish: configure `[status_page]` and/or `[email]` in drbot.toml (README: \"Telling users\")".into(),
        ));
    }
    let text = cmd.text("text").filter(|t| !t.trim().is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > 2000) {
        return Err(Invalid(
            "the text is longer than 2000 characters; users read a short notice — say what is being done and link to details".into(),
        ));
    }
    Ok(Args { template, text })
}

/// The notice's words: its subject (email), title (page) and body (both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub subject: String,
    pub body: String,
}

/// The plan's templates, filled in with what drbot knows and the requester's `text`.
pub fn draft(
    template: Template,
    incident: &Incident,
    scenario: &Scenario,
    settings: &crate::config::IncidentSettings,
    text: Option<&str>,
) -> Draft {
    let service = &settings.service_name;
    let status = &settings.status_page_url;
    let done: Vec<&str> = scenario
        .steps
        .iter()
        .zip(incident.steps_done.iter())
        .filter(|(_, d)| **d)
        .map(|(s, _)| s.text.as_str())
        .collect();
    let doing = match text {
        Some(t) => t.to_string(),
        None if done.is_empty() => format!(
            "Working through the {} recovery plan.",
            scenario.title.to_lowercase()
        ),
        None => format!("Completed so far: {}.", done.join("; ")),
    };
    let eta = match scenario.rto.seconds() {
        Some(s) => format!(
            "Our recovery target is {} from the start of the incident ({} UTC).",
            crate::duration::human(chrono::Duration::seconds(s as i64)),
            (incident.started_at + chrono::Duration::seconds(s as i64)).format("%Y-%m-%d %H:%M")
        ),
        None => "We will share an estimate as soon as we have one.".to_string(),
    };
    match template {
        Template::Outage => Draft {
            subject: format!("Service Interruption - {service}"),
            body: format!(
                "We are currently experiencing a service interruption affecting {service}.\n\nWhat happened:\n{} ({}).\n\nWhat we're doing:\n{doing}\n\nExpected resolution:\n{eta}\n\nWe apologize for the inconvenience and will update you as we have more information.\n\nFor updates: {status}",
                incident.title,
                scenario.impact.to_lowercase(),
            ),
        },
        Template::Update => Draft {
            subject: format!("Update: Service Interruption - {service}"),
            body: format!(
                "An update on the service interruption affecting {service}.\n\nWhat we're doing:\n{doing}\n\nExpected resolution:\n{eta}\n\nWe will update you as we have more information.\n\nFor updates: {status}"
            ),
        },
        Template::Resolved => {
            let at = incident
                .resolved_at
                .map(|t| format!(" at {} UTC", t.format("%Y-%m-%d %H:%M")))
                .unwrap_or_default();
            let note = text.map(|t| format!("\n\n{t}")).unwrap_or_default();
            Draft {
                subject: format!("Resolved: Service Interruption - {service}"),
                body: format!(
                    "The service interruption affecting {service} has been resolved{at}. The service is operating normally.{note}\n\nWe apologize for the inconvenience.\n\nFor details: {status}"
                ),
            }
        }
    }
}

/// The page's impact for a scenario: a complete outage is critical, anything else major.
fn impact(scenario: &Scenario) -> &'static str {
    if scenario.impact.to_lowercase().contains("complete") {
        "critical"
    } else {
        "major"
    }
}

/// A Message-ID only drbot makes: the incident, the template, when, the list.
fn message_id(incident: &str, template: Template, list: &str, domain: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect()
    };
    format!(
        "<drbot.{}.{}.{}.{}@{domain}>",
        safe(incident),
        template.as_str(),
        crate::clock::now().timestamp_millis(),
        safe(list)
    )
}

/// `[status_page] components` against the plan: a key that is not one of its scenarios
/// (`check-config` refuses it).
pub fn check_components(settings: &Settings, scenarios: &crate::scenarios::ScenarioSet) -> Vec<String> {
    let Some(page) = &settings.status_page else {
        return Vec::new();
    };
    page.components
        .keys()
        .filter(|id| scenarios.get(id).is_none())
        .map(|id| {
            format!(
                "status_page.components: '{id}' is not one of the plan's scenarios ({})",
                scenarios.ids().join(", ")
            )
        })
        .collect()
}

/// Plans the notice for the incident of `asker`'s channel.
pub async fn plan(
    app: &Arc<App>,
    args: Args,
    asker: &Asker,
) -> Result<(NoticePlan, String), PlanFailure> {
    let Some(id) = &asker.incident else {
        return Err(PlanFailure::Invalid(
            "`/dr notify users` tells users about an incident: run it in the incident's channel (`/dr incident list` shows them)".into(),
        ));
    };
    let store = |e: crate::store::StoreError| {
        PlanFailure::Invalid(format!("drbot could not read the incident ({e}); nothing was asked"))
    };
    let incident = app
        .store
        .incident(id)
        .await
        .map_err(store)?
        .ok_or_else(|| PlanFailure::Invalid(format!("incident {id} is not in drbot's store")))?;
    let scenario = app.scenarios.get(&incident.scenario).ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "scenario `{}` of incident {id} is no longer in the plan",
            incident.scenario
        ))
    })?;
    let template = args.template.unwrap_or(if !incident.is_open() {
        Template::Resolved
    } else if incident.users_told_at.is_some() {
        Template::Update
    } else {
        Template::Outage
    });
    if !incident.is_open() && template != Template::Resolved {
        return Err(PlanFailure::Invalid(format!(
            "incident {id} is resolved: users can only be told so, with `--template resolved`"
        )));
    }
    let settings = &app.settings;
    let draft = draft(
        template,
        &incident,
        scenario,
        &settings.incidents,
        args.text.as_deref(),
    );
    let mut deliveries = Vec::new();
    let mut lines = Vec::new();
    if let Some(page) = &settings.status_page {
        let components = page.components.get(&scenario.id).cloned().unwrap_or_default();
        let component_status = if template == Template::Resolved {
            "operational"
        } else {
            "major_outage"
        };
        let impact = impact(scenario);
        let what = match &incident.page_incident {
            Some(known) => format!("update its incident `{known}`"),
            None => format!(
                "open an incident \"{}\"",
                crate::slack::text::escape(&draft.subject)
            ),
        };
        let touched = if components.is_empty() {
            " (no components configured for this scenario)".to_string()
        } else {
            format!(
                "; components {} → *{}*",
                crate::slack::text::codes(&components),
                component_status.replace('_', " ")
            )
        };
        lines.push(format!(
            "• *Status page* `{}`: {what}, status *{}*, impact *{impact}*{touched}",
            page.page_id,
            template.page_status()
        ));
        deliveries.push(Outgoing::StatusPage {
            channel: incident.channel_id.clone(),
            incident: incident.id.clone(),
            request: 0,
            name: draft.subject.clone(),
            status: template.page_status().to_string(),
            impact: impact.to_string(),
            body: draft.body.clone(),
            components,
            component_status: component_status.to_string(),
        });
    }
    if let Some(email) = &settings.email {
        let domain = app
            .notify
            .email
            .as_ref()
            .map(|m| m.domain())
            .unwrap_or_else(|| "drbot.invalid".into());
        let mut counted = Vec::new();
        for (list, addresses) in &email.lists {
            counted.push(format!(
                "`{list}` ({} recipient{})",
                addresses.len(),
                if addresses.len() == 1 { "" } else { "s" }
            ));
            deliveries.push(Outgoing::Email {
                channel: incident.channel_id.clone(),
                incident: incident.id.clone(),
                request: 0,
                list: list.clone(),
                bcc: addresses.clone(),
                subject: draft.subject.clone(),
                body: draft.body.clone(),
                message_id: message_id(&incident.id, template, list, &domain),
            });
        }
        lines.push(format!(
            "• *Email* from `{}`, one message per list, recipients in Bcc: {}; subject \"{}\"",
            crate::slack::text::escape(&email.from),
            counted.join(", "),
            crate::slack::text::escape(&draft.subject)
        ));
    }
    let drill = if incident.drill {
        ":test_tube: *DRILL* — approving publishes nothing: it records what would have been published.\n"
    } else {
        ""
    };
    let told = match incident.users_told_at {
        Some(t) => format!("Users were last told at {} UTC.", t.format("%Y-%m-%d %H:%M")),
        None => "Users have not been told anything yet.".to_string(),
    };
    // Each line of the body in its own code span: nothing in it formats, mentions or links,
    // and however Slack's sections split a long request, no line leaves its span.
    let body: Vec<String> = draft
        .body
        .lines()
        .map(|line| match line.trim() {
            "" => ">".to_string(),
            _ => format!(
                "> `{}`",
                crate::slack::text::escape(line).replace('`', "ˋ")
            ),
        })
        .collect();
    let summary = format!(
        "{drill}:loudspeaker: *Tell users* about incident *{}* — template `{}`. {told}\n{}\nWhat users will read, line by line:\n{}",
        incident.id,
        template.as_str(),
        lines.join("\n"),
        body.join("\n")
    );
    let plan = NoticePlan {
        incident: incident.id.clone(),
        template: template.as_str().to_string(),
        drill: incident.drill,
        deliveries,
    };
    Ok((plan, summary))
}

/// Queues the approved notice's publications. Approvals do it in their own transaction
/// (`gate::reactions`); a run reaching here (none does today) does the same.
async fn execute(run: &crate::gate::execute::Run<'_>, _approved: NoticePlan) {
    let done = async {
        let mut tx = run.app.store.begin().await?;
        crate::gate::publish::execute_in(&mut tx, run.app, run.request.id).await?;
        tx.commit().await
    };
    if let Err(e) = done.await {
        tracing::error!(error = %e, "could not queue a notice's publications");
    }
}

// A notice changes the status page and mailboxes, not AWS: no IAM action.
super::changes_aws! {
    iam: [],
    plan(app, args, asker) { plan(app, args, asker).await? }
}
