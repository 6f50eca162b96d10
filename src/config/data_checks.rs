//! What a restored database must hold (`[[rds.databases.checks]]`, `newest_write_sql`) and
//! how drbot reaches it to look (`verify_*` keys): parsed and checked here, with the
//! configuration; run by `actions::verify`.

use serde::{Deserialize, Serialize};

/// `[[rds.databases.checks]] name, sql, expect`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataCheck {
    pub name: String,
    pub sql: String,
    /// `"= N"`, `">= N"`, `"<= N"` or `"> N"`, on the first column of the first row.
    pub expect: String,
}

/// `verify_tls`: how the connection to the restored instance is secured.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyTls {
    /// TLS, the certificate chained to the RDS CA and naming the instance's endpoint.
    #[default]
    VerifyFull,
    /// TLS without checking whose certificate it is.
    Require,
    /// No TLS: for tests on loopback only.
    Disable,
}

/// `verify_credentials`: where the login comes from. Never a password in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Credentials {
    /// An RDS IAM authentication token for `verify_user` (`rds-db:connect`).
    Iam,
    /// A Secrets Manager secret (name or ARN) holding `username` and `password`.
    Secret(String),
}

impl Credentials {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "iam" => Ok(Self::Iam),
            t => match t.strip_prefix("secret:").map(str::trim) {
                Some(id) if !id.is_empty() && !id.contains(char::is_whitespace) => {
                    Ok(Self::Secret(id.to_string()))
                }
                // Not quoted: it may be a password someone put there.
                _ => Err(
                    "its value (not shown: it may be a password) is neither `iam` (an IAM database authentication token) nor `secret:<name or ARN>` (a Secrets Manager secret with `username` and `password`); never a password in this file"
                        .to_string(),
                ),
            },
        }
    }
}

/// The comparison of an `expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Compare {
    Eq,
    Ge,
    Le,
    Gt,
}

/// A parsed `expect`: the first column of the first row compared with a number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Expect {
    pub compare: Compare,
    pub value: f64,
}

impl Expect {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (compare, rest) = [(">=", Compare::Ge), ("<=", Compare::Le), ("=", Compare::Eq), (">", Compare::Gt)]
            .into_iter()
            .find_map(|(op, c)| t.strip_prefix(op).map(|rest| (c, rest)))
            .ok_or_else(|| {
                format!("expect '{text}': write `= N`, `>= N`, `<= N` or `> N` (compared with the first column of the first row)")
            })?;
        let value: f64 = rest
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("expect '{text}': '{}' is not a number", rest.trim()))?;
        Ok(Self { compare, value })
    }

    pub fn holds(&self, got: f64) -> bool {
        match self.compare {
            Compare::Eq => got == self.value,
            Compare::Ge => got >= self.value,
            Compare::Le => got <= self.value,
            Compare::Gt => got > self.value,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.compare {
            Compare::Eq => "=",
            Compare::Ge => ">=",
            Compare::Le => "<=",
            Compare::Gt => ">",
        };
        write!(f, "{op} {}", self.value)
    }
}

/// Words that change data, lock it or act on the server, refused anywhere in a check
/// outside quotes (a data-modifying `WITH`, `SELECT … INTO`, `LOCK IN SHARE MODE`, and the
/// functions that act on sessions, settings or files).
const WRITES: &[&str] = &[
    "insert",
    "update",
    "delete",
    "merge",
    "upsert",
    "truncate",
    "drop",
    "alter",
    "create",
    "grant",
    "revoke",
    "into",
    "lock",
    "set_config",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_sleep",
    "pg_reload_conf",
    "pg_read_file",
    "pg_read_binary_file",
    "lo_import",
    "lo_export",
    "dblink",
    "dblink_exec",
    "sleep",
    "benchmark",
    "load_file",
];

/// The statements a check may be.
const READS: &[&str] = &["select", "with", "values", "table", "show"];

/// Is `sql` one statement that only reads? It is also run in a read-only transaction
/// with a statement timeout, over the extended protocol (one statement only): this check
/// refuses at `check-config` what the database would refuse too late, and more.
pub fn check_statement(sql: &str) -> Result<(), String> {
    let body = sql.trim();
    let body = body.strip_suffix(';').unwrap_or(body).trim_end();
    if body.is_empty() {
        return Err("the statement is empty: write one `SELECT …`".into());
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = body.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                words.push(std::mem::take(&mut word));
            }
            ';' => {
                return Err(
                    "it holds more than one statement (a `;` before its end): a check is ONE read-only statement"
                        .into(),
                )
            }
            '-' if chars.peek() == Some(&'-') => {
                return Err("it holds a comment (`--`): write the statement alone".into())
            }
            '/' if chars.peek() == Some(&'*') => {
                return Err("it holds a comment (`/* */`): write the statement alone".into())
            }
            '#' => {
                return Err("it holds a `#` (a comment in MySQL): write the statement alone".into())
            }
            '$' if word.is_empty() => {
                return Err(
                    "it holds dollar quoting (`$…$`): write string constants in single quotes"
                        .into(),
                )
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => word.push(c),
            _ => words.push(std::mem::take(&mut word)),
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    words.push(word);
    let words: Vec<String> = words
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let first = words.first().map(String::as_str).unwrap_or("");
    if !READS.contains(&first) {
        return Err(format!(
            "it starts with `{first}`: a check is one read-only statement starting with SELECT, WITH, VALUES, TABLE or SHOW"
        ));
    }
    let for_update = words
        .windows(2)
        .any(|p| p[0] == "for" && matches!(p[1].as_str(), "update" | "share" | "no" | "key"));
    if for_update {
        return Err("it locks rows (`FOR UPDATE`/`FOR SHARE`): a check only reads".into());
    }
    if let Some(w) = words.iter().find(|w| WRITES.contains(&w.as_str())) {
        return Err(format!(
            "it holds `{}`: a check only reads (quote it if it is a name or a value)",
            w.to_uppercase()
        ));
    }
    Ok(())
}

impl super::RdsDatabase {
    /// The checks, the newest write and the way in, as `check-config` and start-up refuse
    /// them: (key, message naming the database and the check).
    pub(super) fn validate_verification(&self) -> Result<(), (&'static str, String)> {
        let db = &self.name;
        let mut names = std::collections::HashSet::new();
        for check in &self.checks {
            let key = "rds.databases.checks";
            if check.name.trim().is_empty() {
                return Err((key, format!("'{db}': a check has no `name`")));
            }
            if !names.insert(check.name.as_str()) {
                return Err((
                    key,
                    format!("'{db}': check '{}' is named twice", check.name),
                ));
            }
            check_statement(&check.sql)
                .map_err(|why| (key, format!("'{db}' check '{}': sql: {why}", check.name)))?;
            Expect::parse(&check.expect)
                .map_err(|why| (key, format!("'{db}' check '{}': {why}", check.name)))?;
        }
        if let Some(sql) = &self.newest_write_sql {
            check_statement(sql)
                .map_err(|why| ("rds.databases.newest_write_sql", format!("'{db}': {why}")))?;
        }
        let credentials = match &self.verify_credentials {
            Some(text) => Some(
                Credentials::parse(text)
                    .map_err(|why| ("rds.databases.verify_credentials", format!("'{db}': {why}")))?,
            ),
            None if self.verifies_data() => {
                return Err((
                    "rds.databases.verify_credentials",
                    format!("'{db}' has checks but no way in: set `verify_credentials = \"iam\"` (with `verify_user`) or `verify_credentials = \"secret:<name or ARN>\"` (never a password in this file)"),
                ))
            }
            None => None,
        };
        if credentials == Some(Credentials::Iam) && self.verify_user.is_none() {
            return Err((
                "rds.databases.verify_user",
                format!("'{db}': IAM authentication signs in as `verify_user`; set it (a database user granted `rds_iam`)"),
            ));
        }
        if let Some(ca) = &self.verify_ca {
            if !ca.is_file() {
                return Err((
                    "rds.databases.verify_ca",
                    format!("'{db}': {} is not a file (a PEM bundle such as AWS's rds-global-bundle.pem)", ca.display()),
                ));
            }
        }
        Ok(())
    }

    /// A warning for a setting meant only for tests.
    pub fn verification_warning(&self) -> Option<String> {
        (self.verifies_data() && self.verify_tls == VerifyTls::Disable).then(|| {
            format!(
                "rds.databases '{}': verify_tls = \"disable\" sends the checks and the login without TLS; it is for tests on loopback only",
                self.name
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_one_statement_that_only_reads() {
        for ok in [
            "select count(*) from orders",
            "SELECT count(*) FROM pg_catalog.pg_class WHERE relkind='r';",
            "with t as (select 1 as n) select n from t",
            "select count(*) from orders where note = 'drop; delete'",
            "select max(updated_at) from `orders`",
            "show tables",
            "select replace(comment, 'a', 'b') from notes where start > now()",
        ] {
            assert!(
                check_statement(ok).is_ok(),
                "{ok}: {:?}",
                check_statement(ok)
            );
        }
        for (bad, says) in [
            ("", "empty"),
            ("delete from orders", "starts with `delete`"),
            ("select 1; delete from orders", "more than one statement"),
            ("select 1 -- x\n", "comment"),
            ("/* x */ select 1", "comment"),
            (
                "with d as (delete from orders returning *) select count(*) from d",
                "DELETE",
            ),
            ("select * into backup from orders", "INTO"),
            ("select * from orders for update", "FOR UPDATE"),
            ("select $$;$$", "dollar"),
            ("select 'open", "not closed"),
            ("select 1; commit; drop table orders", "more than one"),
            ("select set_config('x','y',false)", "SET_CONFIG"),
            ("select pg_sleep(600)", "PG_SLEEP"),
            ("select * from orders lock in share mode", "LOCK"),
        ] {
            let e = check_statement(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn expectations_compare_the_first_value() {
        let e = Expect::parse(">= 1000").unwrap();
        assert!(e.holds(1000.0) && e.holds(5e6) && !e.holds(999.0));
        assert!(Expect::parse("= 0").unwrap().holds(0.0));
        assert!(!Expect::parse("> 0").unwrap().holds(0.0));
        assert!(Expect::parse("<= 2.5").unwrap().holds(2.5));
        for bad in ["1000", "=> 1", ">= many", "", "!= 3", "< 3", ">= inf"] {
            assert!(Expect::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_iam_or_a_secret_never_a_password() {
        assert_eq!(Credentials::parse("iam").unwrap(), Credentials::Iam);
        assert_eq!(
            Credentials::parse("secret:rds!db-1234").unwrap(),
            Credentials::Secret("rds!db-1234".into())
        );
        for bad in ["password:hunter2", "secret:", "hunter2", "secret:a b"] {
            let e = Credentials::parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
