// Shared by the fuzz targets: the shipped commands and the example configuration, loaded
// once, as `serve` loads them.
use std::sync::OnceLock;

use drbot::config::Settings;
use drbot::router::CommandSet;

pub fn commands() -> &'static CommandSet {
    static SET: OnceLock<CommandSet> = OnceLock::new();
    SET.get_or_init(|| CommandSet::embedded().expect("the shipped commands load"))
}

pub fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        Settings::parse(include_str!("../../drbot.example.toml"), "drbot.example.toml")
            .expect("the example configuration loads")
    })
}

/// Parses `text` as a `/dr` command and, when it parses, runs the action's offline checks
/// (what the acknowledgement runs before anything reaches AWS).
pub fn command(text: &str) {
    if let Ok(cmd) = drbot::router::parse(text, commands(), settings()) {
        let _ = drbot::actions::validate(&cmd, settings());
        let _ = cmd.def.action.changes_aws_with(&cmd);
        let _ = cmd.approval();
    }
}
