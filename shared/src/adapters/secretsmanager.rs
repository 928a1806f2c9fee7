//! Secrets from Secrets Manager, kept for a few minutes so a burst of webhook deliveries reads
//! the secret once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::ports::{BoxError, Secrets};

const KEEP_FOR: Duration = Duration::from_secs(300);

pub struct SecretsManagerSecrets {
    client: Client,
    cache: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

impl SecretsManagerSecrets {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn secret(&self, id: &str) -> Result<Vec<u8>, BoxError> {
        if let Some((read_at, value)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(id)
            && read_at.elapsed() < KEEP_FOR
        {
            return Ok(value.clone());
        }
        let output = self.client.get_secret_value().secret_id(id).send().await?;
        let value = match (output.secret_string, output.secret_binary) {
            (Some(text), _) => text.into_bytes(),
            (None, Some(blob)) => blob.into_inner(),
            (None, None) => return Err(format!("secret {id} has no value").into()),
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), (Instant::now(), value.clone()));
        Ok(value)
    }
}
