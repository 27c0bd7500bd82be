//! OpenKilda's own code as the judge (`../shared/openkilda-oracle/`, or `FLROUTER_ORACLE`): a
//! small Java tool built from OpenKilda's real message classes and consumer rules. `examples`
//! gives real instances of the classes the router reads and writes, serialised by OpenKilda's
//! own mappers; `judge` has records read the way the OpenKilda consumer of their topic reads
//! them. It needs Java 17 and, the first time, Maven Central (`scripts/deps.sh` installs both).
//!
//! A missing oracle fails the test loudly, as a missing broker does.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{json, Value};

/// Where the oracle is: `FLROUTER_ORACLE`, else `shared/openkilda-oracle` beside the checkout.
pub fn dir() -> PathBuf {
    let dir = std::env::var_os("FLROUTER_ORACLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/openkilda-oracle")
        });
    assert!(
        dir.join("run.sh").is_file(),
        "the OpenKilda oracle is not at {} (set FLROUTER_ORACLE)",
        dir.display()
    );
    dir
}

fn run(args: &[&str], input: &str) -> String {
    let mut child = Command::new("bash")
        .arg(dir().join("run.sh"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the oracle (bash run.sh)");
    let mut stdin = child.stdin.take().expect("oracle stdin");
    let input = input.to_string();
    // Written from a thread: the oracle answers line by line while it reads.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("oracle output");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "oracle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("oracle output is UTF-8")
}

/// The oracle's `--examples`, by name (`NetworkDumpSwitchData`, `AliveRequest`, …): each with
/// `topic`, `key`, `value` (JSON) and `value_b64` (the exact bytes OpenKilda's mapper wrote).
pub fn examples() -> &'static Vec<Value> {
    static EXAMPLES: OnceLock<Vec<Value>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        run(&["--examples"], "")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("an example is JSON"))
            .collect()
    })
}

pub fn example(name: &str) -> &'static Value {
    examples()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("the oracle has no example {name}"))
}

/// The exact bytes of an example's value.
pub fn example_bytes(name: &str) -> Vec<u8> {
    let b64 = example(name)["value_b64"].as_str().expect("value_b64");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

/// A record as a Kafka consumer sees it.
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The reading OpenKilda component (`network`, `floodlight`, …); None picks it by topic.
    pub role: Option<String>,
}

/// Each record judged as its OpenKilda consumer reads it (with the version gate when
/// `version` is given): the oracle's verdict line per record, in order.
pub fn judge(records: &[Record], version: Option<&str>) -> Vec<Value> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let input: String = records
        .iter()
        .map(|r| {
            let headers: Vec<Value> = r.headers.iter().map(|(k, v)| json!([k, b64(v)])).collect();
            let line = json!({
                "topic": r.topic,
                "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
                "value_b64": b64(&r.value),
                "headers": headers,
                "consumer": r.role.clone().unwrap_or_else(|| "auto".into()),
            });
            format!("{line}\n")
        })
        .collect();
    let mut args = Vec::new();
    if let Some(v) = version {
        args.extend(["--version-check", v]);
    }
    let verdicts: Vec<Value> = run(&args, &input)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a verdict is JSON"))
        .collect();
    assert_eq!(verdicts.len(), records.len(), "one verdict per record");
    verdicts
}
