//! Secrets Manager: a secret is a JSON object of named strings, read once at cold start.

use crate::config::ConfigError;
use aws_sdk_secretsmanager::Client;
use std::collections::BTreeMap;

/// A secret's fields. `Debug` shows the names only, never the values.
#[derive(Clone, Default)]
pub struct SecretFields(BTreeMap<String, String>);

impl std::fmt::Debug for SecretFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl SecretFields {
    pub fn from_json(id: &str, json: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(json)
            .map(SecretFields)
            .map_err(|_| ConfigError::Secret {
                id: id.to_owned(),
                detail: "is not a JSON object of strings".into(),
            })
    }

    /// The named field; a missing or empty one fails with the secret's id and the field name.
    pub fn require(&self, id: &str, name: &str) -> Result<String, ConfigError> {
        self.optional(name).ok_or_else(|| ConfigError::Secret {
            id: id.to_owned(),
            detail: format!("has no field {name:?}"),
        })
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

pub async fn fetch(client: &Client, id: &str) -> Result<SecretFields, ConfigError> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            id: id.to_owned(),
            detail: crate::error::aws_error_text(&e),
        })?;
    let json = out.secret_string().ok_or_else(|| ConfigError::Secret {
        id: id.to_owned(),
        detail: "has no SecretString".into(),
    })?;
    SecretFields::from_json(id, json)
}

impl crate::config::SecretSource {
    /// Reads the secret's fields: from Secrets Manager when an id is configured, otherwise from
    /// environment variables named like the fields in upper case (local runs only).
    pub async fn load(
        &self,
        sdk: &aws_config::SdkConfig,
        env: &crate::config::Env,
        fields: &[&str],
    ) -> Result<SecretFields, ConfigError> {
        match self {
            crate::config::SecretSource::SecretsManager { id } => {
                fetch(&Client::new(sdk), id).await
            }
            crate::config::SecretSource::Environment => Ok(SecretFields(
                fields
                    .iter()
                    .filter_map(|f| {
                        env.optional(&f.to_uppercase())
                            .map(|v| ((*f).to_owned(), v))
                    })
                    .collect(),
            )),
        }
    }

    /// How the secret is named in error messages.
    pub fn describe(&self) -> &str {
        match self {
            crate::config::SecretSource::SecretsManager { id } => id,
            crate::config::SecretSource::Environment => "environment",
        }
    }
}
