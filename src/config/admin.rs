//! `admin`: the admin HTTP API and dashboard.

use serde::{Deserialize, Serialize};

/// Overrides `admin.token` when set.
pub const TOKEN_ENV: &str = "FLROUTER_ADMIN_TOKEN";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub enabled: bool,
    /// `host:port` to listen on (a host name or an address); loopback by default.
    pub bind: String,
    /// Bearer token for mutating endpoints; none = they are refused.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: "127.0.0.1:9464".into(),
            token: None,
        }
    }
}

impl AdminConfig {
    /// Problems, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let ok = self
            .bind
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        match ok {
            true => Vec::new(),
            false => vec![format!(
                "admin.bind: {:?} is not host:port (e.g. 127.0.0.1:9464, localhost:9464, [::1]:9464)",
                self.bind
            )],
        }
    }

    /// The token in force: the environment's, else the configured one (empty = none).
    pub fn effective_token(&self) -> Option<String> {
        std::env::var(TOKEN_ENV)
            .ok()
            .or_else(|| self.token.clone())
            .filter(|t| !t.trim().is_empty())
    }
}
