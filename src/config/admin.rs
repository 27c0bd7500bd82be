//! `admin`: the admin HTTP API and dashboard.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Overrides `admin.token` when set.
pub const TOKEN_ENV: &str = "FLROUTER_ADMIN_TOKEN";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub enabled: bool,
    /// Address to listen on; loopback by default.
    pub bind: SocketAddr,
    /// Bearer token for mutating endpoints; none = they are refused.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token: None,
        }
    }
}

impl AdminConfig {
    /// The token in force: the environment's, else the configured one (empty = none).
    pub fn effective_token(&self) -> Option<String> {
        std::env::var(TOKEN_ENV)
            .ok()
            .or_else(|| self.token.clone())
            .filter(|t| !t.trim().is_empty())
    }
}
