//! WAF IP sets behind a port named for blocking. IAM: `wafv2:GetIPSet`, `wafv2:UpdateIPSet`
//! on the configured IP sets.

use aws_sdk_wafv2::operation::RequestId;
use aws_sdk_wafv2::types::Scope;

use super::AwsError;
use crate::config::{WafIpSetRef, WafScope};

/// One IP set as read: its addresses and the token that guards the next write.
#[derive(Debug, Clone)]
pub struct IpSetContents {
    pub addresses: Vec<String>,
    pub lock_token: String,
}

/// A write that did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Someone else wrote the set since it was read (`WAFOptimisticLockException`).
    #[error("the IP set changed since it was read")]
    Conflict,
    #[error(transparent)]
    Aws(AwsError),
}

/// The WAF calls blocking makes.
#[allow(async_fn_in_trait)]
pub trait WafBlocklist {
    async fn read_set(&self, set: &WafIpSetRef, scope: WafScope)
        -> Result<IpSetContents, AwsError>;
    /// Replaces the set's addresses, guarded by `lock_token`; returns the AWS request id.
    async fn write_set(
        &self,
        set: &WafIpSetRef,
        scope: WafScope,
        addresses: Vec<String>,
        lock_token: &str,
    ) -> Result<String, WriteError>;
}

impl From<AwsError> for WriteError {
    /// A write WAF refused because what it writes changed since it was read
    /// (`WAFOptimisticLockException`) is a conflict, to be read again and retried.
    fn from(e: AwsError) -> Self {
        if e.message.starts_with("WAFOptimisticLockException") {
            WriteError::Conflict
        } else {
            WriteError::Aws(e)
        }
    }
}

fn resource(set: &WafIpSetRef) -> String {
    format!("ip set {} ({})", set.name, set.id)
}

impl WafBlocklist for aws_sdk_wafv2::Client {
    async fn read_set(
        &self,
        set: &WafIpSetRef,
        scope: WafScope,
    ) -> Result<IpSetContents, AwsError> {
        let out = self
            .get_ip_set()
            .name(&set.name)
            .id(&set.id)
            .scope(Scope::from(scope.as_str()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetIPSet", &resource(set), &e))?;
        Ok(IpSetContents {
            addresses: out
                .ip_set()
                .map(|s| s.addresses().to_vec())
                .unwrap_or_default(),
            lock_token: out.lock_token().unwrap_or_default().to_string(),
        })
    }

    async fn write_set(
        &self,
        set: &WafIpSetRef,
        scope: WafScope,
        addresses: Vec<String>,
        lock_token: &str,
    ) -> Result<String, WriteError> {
        let call = self
            .update_ip_set()
            .name(&set.name)
            .id(&set.id)
            .scope(Scope::from(scope.as_str()))
            .set_addresses(Some(addresses))
            .lock_token(lock_token);
        let sent: Result<String, AwsError> =
            async { super::change!(aws_sdk_wafv2, "UpdateIPSet", resource(set), call) }.await;
        sent.map_err(WriteError::from)
    }
}
