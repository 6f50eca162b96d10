//! Email to users over SMTP (lettre): STARTTLS required on `smtp://`, TLS from the first
//! byte on `smtps://` (Amazon SES's SMTP endpoint works with either), one plain-text
//! message per recipient list with the recipients in Bcc and the Message-ID drbot chose
//! when the message was queued — sent again after a lost answer, it is the same message to
//! every mail system that de-duplicates.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::NotifyError;
use crate::config::{EmailSettings, EmailTls, Secret};

const PEER: &str = "the SMTP server";
/// One message's limit (connect, TLS, authentication, the whole transaction).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One message to one list.
#[derive(Debug, Clone)]
pub struct Email {
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// `<…@…>`, chosen before the first attempt.
    pub message_id: String,
}

pub struct Mailer {
    settings: EmailSettings,
    password: Option<Secret>,
}

impl Mailer {
    pub fn new(settings: &EmailSettings, password: Option<Secret>) -> Self {
        Self {
            settings: settings.clone(),
            password,
        }
    }

    /// Sends `email`; answers the server's reply to the message's data.
    async fn deliver(&self, email: &Email) -> Result<String, NotifyError> {
        let refused = |message: String| NotifyError::Refused {
            peer: PEER,
            message,
        };
        let message = self.message(email).map_err(refused)?;
        let transport = self.transport().map_err(refused)?;
        let sent = crate::clock::timeout(SEND_TIMEOUT, transport.send(message)).await;
        match sent {
            Ok(Ok(reply)) => Ok(reply.message().collect::<Vec<_>>().join(" ")),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(NotifyError::Unavailable {
                peer: PEER,
                message: format!("no answer within {}s", SEND_TIMEOUT.as_secs()),
                maybe_done: true,
            }),
        }
    }

    fn message(&self, email: &Email) -> Result<Message, String> {
        let from: Mailbox =
            self.settings.from.parse().map_err(|e| {
                format!("the sender '{}' is not a mailbox: {e}", self.settings.from)
            })?;
        let mut builder = Message::builder()
            .from(from)
            .subject(email.subject.replace(['\r', '\n'], " "))
            .message_id(Some(email.message_id.clone()))
            .header(ContentType::TEXT_PLAIN);
        for address in &email.bcc {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| format!("'{address}' is not an address: {e}"))?;
            builder = builder.bcc(mailbox);
        }
        builder
            .body(email.body.clone())
            .map_err(|e| format!("the message could not be made: {e}"))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let (host, port, implicit) = self
            .settings
            .server()
            .ok_or_else(|| format!("'{}' is not an SMTP URL", self.settings.smtp_url))?;
        let tls = match self.settings.tls {
            EmailTls::None => Tls::None,
            EmailTls::Required => {
                let mut params = TlsParameters::builder(host.clone());
                if let Some(ca) = &self.settings.ca {
                    let pem = std::fs::read(ca)
                        .map_err(|e| format!("[email] ca '{ca}' cannot be read: {e}"))?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| format!("[email] ca '{ca}' is not a PEM certificate: {e}"))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| format!("TLS could not be set up: {e}"))?;
                if implicit {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(SEND_TIMEOUT));
        if let (Some(user), Some(password)) = (&self.settings.username, &self.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(builder.build())
    }
}

impl super::Mail for Mailer {
    fn send<'a>(
        &'a self,
        email: &'a Email,
    ) -> futures_util::future::BoxFuture<'a, Result<String, NotifyError>> {
        Box::pin(self.deliver(email))
    }

    fn domain(&self) -> String {
        crate::config::notify::address_of(&self.settings.from)
            .split('@')
            .nth(1)
            .unwrap_or("drbot.invalid")
            .to_string()
    }
}

/// What to do after the server (or the connection) failed.
fn classify(e: lettre::transport::smtp::Error) -> NotifyError {
    // lettre's errors name the server's reply, never the credentials.
    let message = e.to_string();
    if e.is_transient() {
        NotifyError::Unavailable {
            peer: PEER,
            message,
            maybe_done: false,
        }
    } else if e.is_permanent() || e.is_tls() || e.is_client() {
        NotifyError::Refused {
            peer: PEER,
            message,
        }
    } else {
        // A timeout or a broken connection: the server may have taken the message.
        NotifyError::Unavailable {
            peer: PEER,
            message,
            maybe_done: true,
        }
    }
}
