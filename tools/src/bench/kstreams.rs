//! `--baseline kstreams`: the middle is a plain Kafka Streams application with default
//! settings (`tools/kstreams/Route.java`, built by `scripts/kstreams.sh build`) doing the
//! lean pipe's hop — the comparison the issue of the two-second takeover asks for ("below a
//! Kafka Streams app doing the same hop").

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

use crate::Setup;

/// Where `scripts/kstreams.sh build` puts the classes and their jars, with the script's
/// environment (`KSTREAMS_CACHE`, else `.cache/kstreams-<KSTREAMS_VERSION or 3.9.1>` under
/// the working directory: the bench runs from the repository's root).
fn cache() -> PathBuf {
    if let Some(c) = std::env::var_os("KSTREAMS_CACHE") {
        return PathBuf::from(c);
    }
    let version = std::env::var("KSTREAMS_VERSION").unwrap_or_else(|_| "3.9.1".into());
    PathBuf::from(format!(".cache/kstreams-{version}"))
}

/// Starts the Kafka Streams baseline for the run whose config is `config`: its topics
/// created first (a Streams app refuses missing source topics), its routing table written
/// beside the config, its application id the run's group id.
pub fn spawn(config: &Path, log: &Path, settings: &[String]) -> anyhow::Result<Child> {
    let cache = cache();
    let classes = cache.join("classes");
    anyhow::ensure!(
        classes.join("Route.class").exists(),
        "{} not built: run scripts/kstreams.sh build",
        classes.join("Route.class").display()
    );
    let setup = Setup::load(config)?;
    let c = &setup.config;
    let reply = setup.load.reply_topic.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let route = runtime.block_on(crate::pipe::prepare(&setup, &reply))?;
    let (lines, fallback) = route.lines();
    let routes = config.with_extension("routes.tsv");
    std::fs::write(&routes, lines)?;
    let state = config.with_extension("kstreams-state");
    let join = |v: Vec<String>| v.join(",");
    let classpath = format!("{}:{}/*", classes.display(), cache.join("lib").display());
    let child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg("Route")
        .args(["--brokers", &c.kafka.brokers])
        .args(["--app-id", &format!("{}-kstreams", c.kafka.group_id)])
        .arg("--state-dir")
        .arg(&state)
        .args(["--commands", &join(c.topics.command_topics())])
        .args([
            "--fl-write",
            &join(
                c.fls
                    .iter()
                    .map(|f| c.topics.fl_write_topic(&f.id))
                    .collect(),
            ),
        ])
        .args(["--reply", &reply])
        .arg("--routes")
        .arg(&routes)
        .args(["--default", fallback])
        .args(settings.iter().flat_map(|s| ["--set", s.as_str()]))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting the Kafka Streams baseline (java)")?;
    Ok(child)
}
