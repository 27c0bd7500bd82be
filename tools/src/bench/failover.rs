//! `fl-router-tools bench --failover-kills K`: N router instances as one cluster under load (the FL
//! simulator and the load generator as child processes), one instance killed with -9 at a time,
//! round robin. Each takeover is timed from the kill until the survivors hold every FL, every
//! command partition and the leadership (read from their `/api/cluster`); the killed instance
//! is then started again with its id and the next kill waits until the FLs are spread again.
//! Prints each takeover, their distribution, and the load's outcome over all the kills.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{instance_configs, median, spawn, stop, write_config, BenchArgs, Side};

/// One instance: its config, its current process and that incarnation's log.
struct Instance {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    admin: Option<String>,
    incarnation: usize,
    name: String,
}

impl Instance {
    fn start(&mut self, out: &Path) -> anyhow::Result<()> {
        self.incarnation += 1;
        self.log = out.join(format!("{}-{}.log", self.name, self.incarnation));
        self.child = Some(spawn(Side::Router, &self.config, &self.log, &[])?);
        self.admin = None;
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.admin = None;
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its `/api/cluster`, once its admin API is up.
    fn view(&mut self) -> Option<Value> {
        if self.admin.is_none() {
            self.admin = self
                .log_text()
                .lines()
                .find_map(|l| l.split("admin API listening on ").nth(1))
                .map(|u| u.trim().to_string());
        }
        let url = format!("{}/api/cluster", self.admin.as_ref()?);
        ureq::get(&url)
            .call()
            .ok()?
            .body_mut()
            .read_json::<Value>()
            .ok()
    }
}

fn owned(v: &Value) -> Vec<String> {
    v["fls_owned"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn command_partitions(v: &Value) -> usize {
    v["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["consumer"] == "commands"))
        .and_then(|g| g["partitions"].as_array())
        .map_or(0, Vec::len)
}

/// Whether `views` hold every FL once, every command partition and one leader; with `spread`,
/// also every instance at least one FL.
fn settled(views: &[Value], fls: usize, partitions: usize, spread: bool) -> bool {
    let mut all: Vec<String> = views.iter().flat_map(owned).collect();
    all.sort();
    all.dedup();
    let leaders = views.iter().filter(|v| v["leader"] == true).count();
    let parts: usize = views.iter().map(command_partitions).sum();
    all.len() == fls
        && leaders == 1
        && parts == partitions
        && (!spread || views.iter().all(|v| !owned(v).is_empty()))
}

/// Polls the instances in `which` until [`settled`]; the time it took, or None at `limit`.
fn until_settled(
    instances: &mut [Instance],
    which: &[usize],
    fls: usize,
    partitions: usize,
    spread: bool,
    limit: Duration,
) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let views: Option<Vec<Value>> = which.iter().map(|&i| instances[i].view()).collect();
        if views.is_some_and(|v| settled(&v, fls, partitions, spread)) {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn run(args: &BenchArgs, base: &Value, id: &str) -> anyhow::Result<()> {
    let n = if args.instances < 2 {
        3
    } else {
        args.instances
    };
    let name = format!("{id}-failover");
    let mut v = base.clone();
    v["kafka"]["group_id"] = json!(name);
    v["kafka"]["max_inflight_commands"] = json!(20_000);
    // A killed instance's FLs wait for its session to expire and their history to be read
    // back: deadlines well beyond that, so a kill alone never times a command out.
    v["timeouts"] =
        json!({"ack": "30s", "answer": "30s", "alive_interval": "1s", "alive_timeout": "20s"});
    v["topics"]["commands"] = json!([format!("{name}.commands")]);
    v["topics"]["switch_map"] = json!(format!("{name}.switch-map"));
    v["topics"]["journal"] = json!(format!("{name}.journal"));
    v["load"]["reply_topic"] = json!(format!("{name}.reply"));
    v["admin"] = json!({"enabled": true, "bind": "127.0.0.1:0"});
    let mut a = args.clone();
    a.instances = n;
    let configs = instance_configs(&a, &v, &name);
    let mut instances = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let iname = format!("{name}-i{}", i + 1);
        let mut inst = Instance {
            config: write_config(&args.out, &iname, c)?,
            log: PathBuf::new(),
            child: None,
            admin: None,
            incarnation: 0,
            name: iname,
        };
        inst.start(&args.out)?;
        instances.push(inst);
    }
    let session = v["kafka"]["consumer"]["session.timeout.ms"]
        .as_str()
        .unwrap_or("10000 (the router's default)")
        .to_string();
    println!(
        "  failover: {n} instances, {} FLs, {} command partitions, {}/s, {} kills, session.timeout.ms {session}",
        args.fls, args.partitions, args.failover_rate, args.failover_kills
    );
    let (fls, partitions) = (args.fls, args.partitions as usize);
    let everyone: Vec<usize> = (0..n).collect();
    let spread = fls >= n;
    let start_limit = Duration::from_secs(120);
    anyhow::ensure!(
        until_settled(
            &mut instances,
            &everyone,
            fls,
            partitions,
            spread,
            start_limit
        )
        .is_some(),
        "the instances did not share the FLs within {start_limit:?}: see {}",
        args.out.display()
    );
    let cfg = &instances[0].config.clone();
    let sim = spawn(
        Side::Router,
        cfg,
        &args.out.join(format!("{name}-sim.log")),
        &["sim"],
    )?;
    std::thread::sleep(Duration::from_secs(5)); // the owners read the simulator's switch events
    let report = args.out.join(format!("{name}.json"));
    // Long enough for every kill: a takeover (a session timeout and a read-back), a restart
    // and the FLs spread again.
    let duration = Duration::from_secs(20 + 35 * args.failover_kills as u64);
    let load = Command::new(std::env::current_exe()?)
        .arg("-c")
        .arg(cfg)
        .args([
            "--duration",
            &humantime::format_duration(duration).to_string(),
            "load",
            "--rate",
            &args.failover_rate.to_string(),
        ])
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(
            args.out.join(format!("{name}-load.log")),
        )?)
        .spawn()?;
    std::thread::sleep(Duration::from_secs(5));
    let mut takeovers = Vec::new();
    for k in 0..args.failover_kills {
        let victim = k % n;
        let survivors: Vec<usize> = everyone.iter().copied().filter(|&i| i != victim).collect();
        let killed = Instant::now();
        instances[victim].kill();
        let took = if args.failover_restart {
            // Static membership: the instance takes its own share back, no rebalance.
            instances[victim].start(&args.out)?;
            until_settled(
                &mut instances,
                &everyone,
                fls,
                partitions,
                spread,
                start_limit,
            )
            .map(|_| killed.elapsed())
        } else {
            until_settled(
                &mut instances,
                &survivors,
                fls,
                partitions,
                false,
                start_limit,
            )
            .map(|_| killed.elapsed())
        };
        let what = if args.failover_restart {
            "restarted and holding its share again"
        } else {
            "taken over"
        };
        match took {
            Some(t) => {
                println!(
                    "  kill {:>2} ({}): {what} in {:>6.2} s",
                    k + 1,
                    instances[victim].name,
                    t.as_secs_f64()
                );
                takeovers.push(t.as_secs_f64());
            }
            None => println!("  kill {:>2}: not {what} within {start_limit:?}", k + 1),
        }
        if !args.failover_restart {
            instances[victim].start(&args.out)?;
        }
        let back = until_settled(
            &mut instances,
            &everyone,
            fls,
            partitions,
            spread,
            start_limit,
        );
        if back.is_none() {
            println!("  the FLs were not spread again within {start_limit:?}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let status = {
        let mut load = load;
        load.wait()?
    };
    stop(sim);
    for i in &mut instances {
        if let Some(c) = i.child.take() {
            stop(c);
        }
    }
    if !takeovers.is_empty() {
        let mut t = takeovers.clone();
        t.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
        println!(
            "  over {} kills: min {:.2} s  p50 {:.2} s  p90 {:.2} s  max {:.2} s  (median {:.2} s)",
            t.len(),
            t[0],
            at(0.5),
            at(0.9),
            t[t.len() - 1],
            median(takeovers)
        );
    }
    anyhow::ensure!(
        status.success(),
        "the load run failed: see {}",
        args.out.display()
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    println!(
        "  load over the kills: sent {} answered {} lost {} router errors {} duplicates {} p99 {:.0} ms  longest answer gap {} ms  errors {}",
        r["sent"],
        r["answered"],
        r["lost"],
        r["router_errors"],
        r["duplicates"],
        r["p99_ms"].as_f64().unwrap_or(0.0),
        r["max_answer_gap_ms"],
        r["errors_by_type"]
    );
    Ok(())
}
