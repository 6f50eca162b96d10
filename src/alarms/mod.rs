//! CloudWatch alarms (SPEC §16): SNS's envelope and the alarm inside it ([`sns`]), and which
//! route an alarm takes and what it does ([`route`]) — pure, so the intake around them
//! (`workers::alarms`: the SQS queue, `POST /aws/sns`) stays thin. An alarm becomes an event
//! and maybe a proposal or an incident; it never reaches the gate by itself.

pub mod route;
pub mod sns;
