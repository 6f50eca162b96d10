//! Secrets Manager's one read: a database login kept in a secret (`GetSecretValue`), as RDS
//! keeps an instance's managed master secret (`{"username": …, "password": …}`). Signed
//! with [`super::signed`] rather than `aws-sdk-secretsmanager` (minutes of every cold build
//! for one call); sent to `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`, else
//! `https://secretsmanager.<region>.amazonaws.com`. IAM: `secretsmanager:GetSecretValue` on
//! the configured secrets. The password never leaves this process: not logged, not in an
//! error, not in Slack ([`Login`]'s `Debug` hides it).

use serde::Deserialize;

use super::signed::{self, Call};
use super::{AwsClients, AwsError};

const OPERATION: &str = "GetSecretValue";

/// A user name and password read from a secret.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"redacted")
            .finish()
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

#[derive(Deserialize)]
struct LoginJson {
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct Fault {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

/// Reads the login in `secret` (a name or an ARN) in `region`.
pub async fn login(aws: &AwsClients, region: &str, secret: &str) -> Result<Login, AwsError> {
    let resource = format!("secret {secret}");
    let fail = |message: String| signed::failed(OPERATION, &resource, message);
    let call = Call {
        operation: OPERATION,
        resource: &resource,
        service: "secretsmanager",
        env: "SECRETS_MANAGER",
        region,
    };
    let json = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
    ];
    let body = serde_json::json!({ "SecretId": secret }).to_string();
    let (status, text) = call.send(aws, &json, body).await?;
    if !status.is_success() {
        let fault: Fault = serde_json::from_str(&text).unwrap_or(Fault {
            kind: None,
            message: None,
        });
        let code = fault
            .kind
            .as_deref()
            .map(|k| k.rsplit('#').next().unwrap_or(k))
            .unwrap_or("error")
            .to_string();
        let mut e = fail(format!(
            "{code}: {}",
            fault.message.unwrap_or_else(|| format!("HTTP {status}"))
        ));
        e.throttled = code == "ThrottlingException";
        return Err(e);
    }
    parse_login(&text).map_err(fail)
}

/// The login in a `GetSecretValue` answer; the error never quotes the secret.
fn parse_login(answer: &str) -> Result<Login, String> {
    let answer: Answer = serde_json::from_str(answer)
        .map_err(|_| "Secrets Manager's answer could not be read".to_string())?;
    let text = answer.secret_string.ok_or(
        "the secret holds no text (SecretString): it must be JSON with `username` and `password`",
    )?;
    let json: LoginJson = serde_json::from_str(&text).map_err(|_| {
        "the secret is not JSON with `username` and `password` (as RDS-managed secrets are)"
            .to_string()
    })?;
    match (json.username, json.password) {
        (Some(username), Some(password)) => Ok(Login { username, password }),
        _ => Err("the secret has no `username` or no `password` field".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_read_from_the_secret_string_and_never_shown() {
        let answer = r#"{"ARN":"arn:aws:secretsmanager:eu-central-1:1:secret:rds!db-1","SecretString":"{\"username\":\"postgres\",\"password\":\"hunter2\"}"}"#;
        let login = parse_login(answer).unwrap();
        assert_eq!(login.username, "postgres");
        assert!(!format!("{login:?}").contains("hunter2"));
        let bad = r#"{"SecretString":"hunter2"}"#;
        assert!(!parse_login(bad).unwrap_err().contains("hunter2"));
        let no_password = r#"{"SecretString":"{\"username\":\"x\"}"}"#;
        assert!(parse_login(no_password).unwrap_err().contains("password"));
    }
}
