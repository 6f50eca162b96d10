//! SQS, for the alarm intake: the queue subscribed to the alarm topic is long-polled and a
//! message is deleted only after its alarm is recorded (SPEC §16). IAM:
//! `sqs:ReceiveMessage`, `sqs:DeleteMessage` on the configured queue.

use super::{AwsClients, AwsError};

/// How long one receive waits for a message (SQS's longest long poll).
pub const WAIT_SECONDS: i32 = 20;

/// One message taken from the queue, to delete once handled.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
}

impl AwsClients {
    /// SQS for the queue at `queue_url`, in its region (`sqs.<region>.amazonaws.com`,
    /// else the default region), each attempt allowed the long poll on top of the region's
    /// call timeout.
    pub fn sqs(&self, queue_url: &str) -> aws_sdk_sqs::Client {
        let region = region_of(queue_url).or_else(|| self.default_region());
        let mut timeout = self.timeout_in(region.as_deref());
        timeout.call += std::time::Duration::from_secs(WAIT_SECONDS as u64);
        aws_sdk_sqs::Client::new(&super::with_timeout(&self.base, region.as_deref(), timeout))
    }
}

/// The region in an SQS queue URL (`https://sqs.eu-central-1.amazonaws.com/…`).
pub fn region_of(queue_url: &str) -> Option<String> {
    let host = url::Url::parse(queue_url).ok()?.host_str()?.to_string();
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some("sqs"), Some(region)) if region != "amazonaws" => Some(region.to_string()),
        _ => None,
    }
}

/// Up to ten messages, waiting up to [`WAIT_SECONDS`] for the first.
pub async fn receive(client: &aws_sdk_sqs::Client, queue: &str) -> Result<Vec<Message>, AwsError> {
    let answer = client
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(WAIT_SECONDS)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ReceiveMessage", queue, &e))?;
    Ok(answer
        .messages()
        .iter()
        .filter_map(|m| {
            Some(Message {
                id: m.message_id()?.to_string(),
                receipt: m.receipt_handle()?.to_string(),
                body: m.body().unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// Deletes a handled message.
pub async fn delete(
    client: &aws_sdk_sqs::Client,
    queue: &str,
    receipt: &str,
) -> Result<(), AwsError> {
    client
        .delete_message()
        .queue_url(queue)
        .receipt_handle(receipt)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::from_sdk("DeleteMessage", queue, &e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_queue_url_says_its_region() {
        assert_eq!(
            super::region_of("https://sqs.eu-central-1.amazonaws.com/123456789012/drbot-alarms")
                .as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            super::region_of("http://127.0.0.1:5000/123456789012/q"),
            None
        );
    }
}
