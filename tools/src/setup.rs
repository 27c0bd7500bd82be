//! One configuration file for the service and its tooling: the service's [`Config`] plus the
//! two sections only the tooling reads (`sim`, `load`), parsed and checked here with the same
//! rules (unknown keys refused, every error naming its key).

use std::path::Path;

use fl_router::config::{Config, ToolSection};
use serde::de::DeserializeOwned;

use crate::load::LoadConfig;
use crate::sim::SimConfig;

/// A configuration file as the tooling reads it.
#[derive(Debug, Clone)]
pub struct Setup {
    pub config: Config,
    pub sim: SimConfig,
    pub load: LoadConfig,
}

impl Setup {
    /// Loads `path` (the service's rules, then `sim` and `load`).
    pub fn load(path: &Path) -> anyhow::Result<Setup> {
        let config = Config::load(path)?;
        Self::of(config).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// The tooling's sections of an already loaded configuration.
    pub fn of(config: Config) -> anyhow::Result<Setup> {
        let sim: SimConfig = section("sim", &config.sim)?;
        let load: LoadConfig = section("load", &config.load)?;
        let ids: Vec<String> = config.fls.iter().map(|f| f.id.clone()).collect();
        let mut problems = sim.validate(&ids);
        problems.extend(load.validate());
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n  "));
        Ok(Setup { config, sim, load })
    }
}

fn section<T: DeserializeOwned + Default>(key: &str, s: &ToolSection) -> anyhow::Result<T> {
    if s.0.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(&s.0).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            key.to_string()
        } else {
            format!("{key}.{path}")
        };
        anyhow::anyhow!("{key}: {}", e.into_inner())
    })
}
