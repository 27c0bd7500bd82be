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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_key_is_in_the_configuration_reference() {
        let reference = include_str!("../../docs/configuration.md");
        let mut all = Vec::new();
        let sim = serde_json::to_value(SimConfig::default()).unwrap();
        let load = serde_json::to_value(LoadConfig::default()).unwrap();
        fl_router::config::key_paths("sim", &sim, &mut all);
        fl_router::config::key_paths("load", &load, &mut all);
        assert!(all.len() > 10, "the sections' keys were not read: {all:?}");
        let missing = fl_router::config::undescribed_keys(reference, &all);
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not describe {missing:?}"
        );
    }

    #[test]
    fn a_bad_tool_section_names_its_key() {
        let config = Config::parse(
            "fls: [{id: a}]\nsim: {switches_per_fl: many}\n",
            "t.yaml",
            Some("127.0.0.1:9092".into()),
        )
        .unwrap();
        let e = Setup::of(config).unwrap_err().to_string();
        assert!(e.contains("sim.switches_per_fl"), "{e}");
    }
}
