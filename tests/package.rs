//! The Debian package on this machine (run as root, in its own step of scripts/test.sh: it
//! installs a package): built with `cargo deb`, installed with `dpkg -i`; the binary runs from
//! it, the config and the env file are where the unit reads them, the unit verifies, the
//! service's user runs the installed router against the test broker until SIGTERM drains it
//! within the unit's `TimeoutStopSec`; an upgrade keeps a changed config; remove and purge.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Runs `cmd args`, asserts it succeeded, returns its stdout.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unit_setting(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in the unit:\n{unit}"))
        .trim()
        .to_string()
}

#[test]
#[ignore = "installs a system package: run as root by scripts/test.sh's package step"]
fn the_debian_package_installs_runs_upgrades_and_uninstalls() {
    assert_eq!(
        run("id", &["-u"]).trim(),
        "0",
        "dpkg -i needs root (scripts/test.sh runs this step only as root)"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let deb = run(&format!("{root}/scripts/package.sh"), &[])
        .trim()
        .to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");
    // A machine where an earlier run was interrupted: start from nothing.
    let _ = Command::new("dpkg").args(["--purge", "fl-router"]).output();

    run("dpkg", &["-i", &deb]);
    let version = run("/usr/bin/fl-router", &["--version"]);
    assert!(
        version
            .trim()
            .starts_with(&format!("fl-router {} (commit ", env!("CARGO_PKG_VERSION")))
            && version.contains("librdkafka"),
        "the installed binary runs and names its build: {version}"
    );
    let files = run("dpkg", &["-L", "fl-router"]);
    let unit_path = files
        .lines()
        .find(|l| l.ends_with("/systemd/system/fl-router.service"))
        .unwrap_or_else(|| panic!("a unit file in the package:\n{files}"))
        .to_string();
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for (k, v) in [
        ("User", "fl-router"),
        ("ProtectSystem", "strict"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("NoNewPrivileges", "yes"),
        ("EnvironmentFile", "-/etc/fl-router/fl-router.env"),
        (
            "ExecStart",
            "/usr/bin/fl-router --config /etc/fl-router/config.yaml",
        ),
    ] {
        assert_eq!(unit_setting(&unit, k), v, "{k}");
    }
    let stop_within = humantime::parse_duration(&unit_setting(&unit, "TimeoutStopSec")).unwrap();
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "fl-router"]);
    for f in ["/etc/fl-router/config.yaml", "/etc/fl-router/fl-router.env"] {
        assert!(conffiles.contains(f), "{f} is a conffile:\n{conffiles}");
    }
    let env_mode = run("stat", &["-c", "%a %U", "/etc/fl-router/fl-router.env"]);
    assert_eq!(env_mode.trim(), "600 root", "the env file holds secrets");
    assert!(
        run("getent", &["passwd", "fl-router"]).contains("/nonexistent"),
        "a system user without a home"
    );
    // The packaged config, as the service's user reads it.
    run(
        "runuser",
        &[
            "-u",
            "fl-router",
            "--",
            "/usr/bin/fl-router",
            "check-config",
            "/etc/fl-router/config.yaml",
        ],
    );
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        // verify exits 0 on a setting it ignores: any word from it is a finding.
        let v = Command::new("systemd-analyze")
            .args(["verify", &unit_path])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        assert!(
            v.status.success() && said.trim().is_empty(),
            "systemd-analyze verify: {said}"
        );
    } else {
        eprintln!("systemd-analyze not installed: the unit is checked by its settings only");
    }

    // The installed router as the service runs it (its user, its binary), on the test
    // broker: ready, then SIGTERM drains it within the unit's TimeoutStopSec.
    let dir = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let config = json!({
        "kafka": {"brokers": brokers(), "topic_replication": replication(), "group_id": format!("p{id}")},
        "topics": {
            "commands": [format!("p{id}.commands")],
            "fl_read": format!("p{id}.speaker_{{fl}}"), "fl_write": format!("p{id}.disco_{{fl}}"),
            "events": format!("p{id}.events"), "default_reply": format!("p{id}.northbound"),
            "dead_letter": format!("p{id}.dead"), "switch_map": format!("p{id}.switch-map"),
            "journal": format!("p{id}.journal"),
        },
        "fls": [{"id": "fl1"}],
        "sync": {"at_start": false},
        "admin": {"bind": "127.0.0.1:0"},
    });
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    run("chmod", &["755", dir.path().to_str().unwrap()]);
    run("chmod", &["644", cfg.to_str().unwrap()]);
    let log = dir.path().join("router.log");
    // setpriv execs the router itself (runuser would stand between and die of the signal).
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=fl-router",
            "--regid=fl-router",
            "--init-groups",
            "--",
            "/usr/bin/fl-router",
            "--config",
        ])
        .arg(&cfg)
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + LONG * 2;
    while !text().contains("router ready: routing commands") {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the installed router exited:\n{}",
            text()
        );
        assert!(Instant::now() < deadline, "not ready:\n{}", text());
        std::thread::sleep(Duration::from_millis(100));
    }
    run("kill", &["-TERM", &child.id().to_string()]);
    let stopping = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopping.elapsed() < stop_within,
            "no exit within TimeoutStopSec ({stop_within:?}):\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "drained and exited 0: {status}\n{}",
        text()
    );

    // An upgrade (the same version installed again) keeps a config the operator changed.
    let mut changed = std::fs::read_to_string("/etc/fl-router/config.yaml").unwrap();
    changed.push_str("\n# changed by the operator\n");
    std::fs::write("/etc/fl-router/config.yaml", &changed).unwrap();
    run("dpkg", &["-i", "--force-confold", &deb]);
    assert_eq!(
        std::fs::read_to_string("/etc/fl-router/config.yaml").unwrap(),
        changed
    );
    run("/usr/bin/fl-router", &["--version"]);

    // Remove keeps the configuration; purge takes it.
    run("dpkg", &["-r", "fl-router"]);
    assert!(!Path::new("/usr/bin/fl-router").exists());
    assert!(Path::new("/etc/fl-router/config.yaml").exists());
    run("dpkg", &["--purge", "fl-router"]);
    assert!(!Path::new("/etc/fl-router/config.yaml").exists());
}
