//! SSM Parameter Store behind a port named for a database cutover. IAM:
//! `ssm:GetParameter`, `ssm:PutParameter` (the configured parameters only).

use aws_sdk_ssm::operation::RequestId;
use aws_sdk_ssm::types::ParameterType;
use serde::{Deserialize, Serialize};

use super::AwsError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub value: String,
    pub version: i64,
    /// `String` or `SecureString`; written back the same.
    pub kind: String,
}

#[allow(async_fn_in_trait)]
pub trait ConnectionSettings {
    async fn parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError>;
    /// Overwrites `name` (keeping its type); returns (new version, AWS request id).
    async fn overwrite(
        &self,
        name: &str,
        value: &str,
        kind: &str,
    ) -> Result<(i64, String), AwsError>;
}

impl ConnectionSettings for aws_sdk_ssm::Client {
    async fn parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError> {
        match self
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().map(|p| Parameter {
                value: p.value().unwrap_or_default().to_string(),
                version: p.version(),
                kind: p
                    .r#type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_else(|| "String".into()),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::from_sdk("GetParameter", name, &e)),
        }
    }

    async fn overwrite(
        &self,
        name: &str,
        value: &str,
        kind: &str,
    ) -> Result<(i64, String), AwsError> {
        let call = self
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::from(kind))
            .overwrite(true);
        let out = super::mutate("PutParameter", name, || {
            super::once!(aws_sdk_ssm, call.clone())
        })
        .await?;
        Ok((
            out.version(),
            out.request_id().unwrap_or("unknown").to_string(),
        ))
    }
}
