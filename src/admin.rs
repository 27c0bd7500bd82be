//! The admin HTTP API (actix-web), bound to 127.0.0.1 unless configured otherwise: health and
//! readiness, Prometheus `/metrics`, FL status, switch lookup, in-flight commands, per-actor
//! mailbox figures, engine counters, the life of one recent command, the in-process load (if any), the dashboard at `/`, and the
//! fault-injection endpoint. Mutating endpoints need `Authorization: Bearer <token>` with the
//! token from `admin.token` or `FLROUTER_ADMIN_TOKEN`; without a configured token they refuse
//! every request (there is no default token).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use fl_router_actors::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::ClusterView;
use crate::config::AdminConfig;
use crate::kafka::producer::{KafkaOutbox, ProducerCounters};
use crate::kafka::stats::KafkaStats;
use crate::metrics;

pub use actix_web::http::StatusCode;

/// A refusal: the HTTP status and why.
pub type Refusal = (StatusCode, String);

/// What a process running test tooling beside the router (`fl-router-tools stage`, the demo)
/// adds to the admin API: the faults the service cannot apply itself (simulated FLs, the
/// embedded broker, the in-process load) and the load's figures. The service knows only this
/// trait; the tooling implements it.
pub trait Extras: Send + Sync {
    /// Applies a fault whose `action` the service does not know (the request's JSON body).
    fn fault(
        &self,
        fault: serde_json::Value,
    ) -> futures::future::BoxFuture<'static, Result<(), Refusal>>;
    /// `GET /api/load`: the in-process load's figures, if one runs.
    fn load(&self) -> Option<serde_json::Value>;
}

#[derive(Clone)]
pub struct AdminState {
    pub engine: Engine,
    pub outbox: Option<Arc<KafkaOutbox>>,
    pub producer: Option<Arc<ProducerCounters>>,
    pub kafka: Option<Arc<KafkaStats>>,
    pub ready: watch::Receiver<bool>,
    pub token: Option<String>,
    /// The tooling's faults and load, when the router runs beside them.
    pub extras: Option<Arc<dyn Extras>>,
    /// This instance among its peers (`/api/cluster`).
    pub cluster: Option<Arc<ClusterView>>,
    /// The last minutes as time series (the dashboard's charts).
    pub history: Option<Arc<crate::history::History>>,
}

/// What the admin API serves: the running router's state — none yet while the router starts
/// (the API is up first: `/health` answers, `/ready` says 503, the rest 503 "starting") —
/// replaced when a reload starts a new engine (the server, its port and its connections stay),
/// and where reloads are asked for.
pub struct AdminSlot {
    state: std::sync::RwLock<Option<AdminState>>,
    /// `POST /api/reload` hands its request to the process's runner here.
    pub reload: Option<tokio::sync::mpsc::UnboundedSender<crate::reload::Request>>,
}

impl AdminSlot {
    pub fn new(
        state: Option<AdminState>,
        reload: Option<tokio::sync::mpsc::UnboundedSender<crate::reload::Request>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: std::sync::RwLock::new(state),
            reload,
        })
    }

    /// The state of the router running now (a clone: handles, not data); none while it starts.
    pub fn current(&self) -> Option<AdminState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, state: AdminState) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Some(state);
    }
}

/// Starts the server on an arbiter (thread) of its own — nothing the router does on its
/// threads, a slow Kafka included, can keep `/health` from answering — and returns its handle
/// (stop it at shutdown) once it listens, or why it cannot (`admin.bind`).
pub fn serve(
    config: &AdminConfig,
    slot: Arc<AdminSlot>,
) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let config = config.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let arbiter = actix_rt::Arbiter::new();
    let started = arbiter.spawn(async move {
        match build(&config, slot) {
            Ok((server, addrs)) => {
                let _ = tx.send(Ok(server.handle()));
                for a in addrs {
                    // Tests and scripts read this line to find a port chosen by the OS.
                    info!("admin API listening on http://{a}");
                }
                let _ = server.await;
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    anyhow::ensure!(started, "admin API: cannot start its thread");
    rx.recv()
        .map_err(|_| anyhow::anyhow!("admin API: its thread ended before it listened"))?
}

fn build(
    config: &AdminConfig,
    slot: Arc<AdminSlot>,
) -> anyhow::Result<(actix_web::dev::Server, Vec<std::net::SocketAddr>)> {
    let data = web::Data::from(slot);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/", web::get().to(dashboard))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_text))
            .route("/api/fls", web::get().to(fls))
            .route("/api/switches/{id}", web::get().to(switch))
            .route("/api/inflight", web::get().to(inflight))
            .route("/api/mailboxes", web::get().to(mailboxes))
            .route("/api/stats", web::get().to(stats))
            .route("/api/load", web::get().to(load))
            .route("/api/cluster", web::get().to(cluster))
            .route(
                "/api/commands/{correlation_id}",
                web::get().to(command_life),
            )
            .route("/api/history", web::get().to(history))
            .route("/api/faults", web::post().to(fault))
            .route("/api/reload", web::post().to(reload))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(config.bind.as_str())
    .map_err(|e| anyhow::anyhow!("admin.bind: cannot listen on {}: {e}", config.bind))?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

async fn dashboard() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("dashboard.html"))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The answer of every endpoint but `/health` and `/ready` while the router starts.
fn starting() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .json(json!({"error": "starting: the router is not running yet"}))
}

async fn ready(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return HttpResponse::ServiceUnavailable().json(json!({"ready": false, "starting": true}));
    };
    if *s.ready.borrow() {
        HttpResponse::Ok().json(json!({"ready": true}))
    } else {
        HttpResponse::ServiceUnavailable().json(
            json!({"ready": false, "reason": "consumers not assigned or FL backlog not read yet"}),
        )
    }
}

async fn snapshot(s: &AdminState) -> metrics::Snapshot {
    let fls = s
        .engine
        .settings()
        .fls
        .iter()
        .filter_map(|f| s.engine.fl_liveness(&f.id).map(|st| (f.id.clone(), st)))
        .collect();
    metrics::Snapshot {
        c: s.engine.counters().values(),
        mailboxes: s.engine.mailboxes(false),
        fls,
        switches: s.engine.switch_counts().await.unwrap_or_default(),
        producer: s.producer.clone(),
        kafka: s.kafka.clone(),
        share: s.cluster.as_ref().map(|c| c.share()),
        latency: s.history.as_ref().and_then(|h| h.latency_histogram()),
    }
}

async fn metrics_text(req: HttpRequest, st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let body = metrics::render(snapshot(&s).await);
    // OpenMetrics when the scraper asks for it, the classic text format otherwise.
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match openmetrics {
        true => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(body),
        false => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(metrics::to_classic(&body)),
    }
}

async fn fls(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    let counts = s.engine.switch_counts().await.unwrap_or_default();
    let statuses = s.engine.fl_statuses().await;
    let rows: Vec<_> = s
        .engine
        .settings()
        .fls
        .iter()
        .map(|f| {
            let st = statuses.iter().find(|p| p.fl == f.id);
            json!({
                "fl": f.id,
                "region": f.region,
                "status": s.engine.fl_liveness(&f.id),
                "last_evidence_ms_ago": s.engine.fl_last_evidence(&f.id).map(|d| d.as_millis() as u64),
                "switches": counts.iter().find(|(id, _)| *id == f.id).map_or(0, |(_, n)| n.0),
                "standby_switches": counts.iter().find(|(id, _)| *id == f.id).map_or(0, |(_, n)| n.1),
                "pending": st.map_or(0, |p| p.pending),
                "restarts": st.map_or(0, |p| p.restarts),
            })
        })
        .collect();
    HttpResponse::Ok().json(rows)
}

async fn switch(st: web::Data<AdminSlot>, id: web::Path<String>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    if let Err(e) = fl_router_actors::protocol::normalise_switch_id(&id) {
        return HttpResponse::BadRequest().json(json!({"error": e.to_string()}));
    }
    match s.engine.switch_view(&id).await {
        Ok(Some(v)) => HttpResponse::Ok().json(json!({
            "switch_id": v.switch_id,
            // The FL commands go to (null: unmanaged, read-only connections only).
            "fl_id": v.active,
            "connections": v.connections,
        })),
        Ok(None) => HttpResponse::NotFound()
            .json(json!({"error": "no FL manages this switch", "switch_id": *id})),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({"error": e.to_string()})),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn inflight(st: web::Data<AdminSlot>, q: web::Query<Limit>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    let rows = s.engine.inflight(q.limit.unwrap_or(100).min(10_000)).await;
    let map: serde_json::Map<String, serde_json::Value> =
        rows.into_iter().map(|(fl, r)| (fl, json!(r))).collect();
    HttpResponse::Ok().json(map)
}

async fn history(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    match &s.history {
        Some(h) => HttpResponse::Ok().json(json!({
            "interval_ms": crate::history::INTERVAL.as_millis() as u64,
            "samples": h.samples(),
        })),
        None => HttpResponse::NotFound().json(json!({"error": "no history in this process"})),
    }
}

/// The life of one recent command (`crate::trace` renders it for `fl-router trace`).
async fn command_life(st: web::Data<AdminSlot>, cid: web::Path<String>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    let traces = s.engine.traces();
    let window = traces.window();
    match traces.life(&cid) {
        Some(life) => HttpResponse::Ok().json(crate::trace_view::life_json(&life, &window)),
        None => HttpResponse::NotFound().json(crate::trace_view::not_kept_json(&cid, &window)),
    }
}

async fn cluster(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    match &s.cluster {
        Some(c) => HttpResponse::Ok().json(c.snapshot()),
        None => {
            HttpResponse::NotFound().json(json!({"error": "no Kafka consumers in this process"}))
        }
    }
}

async fn mailboxes(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    HttpResponse::Ok().json(s.engine.mailboxes(false))
}

async fn stats(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    let map: serde_json::Map<String, serde_json::Value> = s
        .engine
        .counters()
        .snapshot()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    HttpResponse::Ok().json(map)
}

async fn load(st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    match s.extras.as_ref().and_then(|e| e.load()) {
        Some(v) => HttpResponse::Ok().json(v),
        None => HttpResponse::NotFound()
            .json(json!({"error": "no in-process load (run fl-router-tools stage or the demo)"})),
    }
}

/// A fault the service applies itself. Any other `action` (simulated FLs, the embedded
/// broker, the in-process load) goes to the tooling's [`Extras`], when it runs in this process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Stop the FL's proxy actor; the supervisor restarts it with its state.
    KillProxy { fl: String },
    /// Stop the outage monitor; its supervisor restarts it.
    KillOutageMonitor,
    /// The router's producer holds every message for `ms`, then sends them in order.
    PauseProducer { ms: u64 },
}

/// The `action` values [`Fault`] takes.
const SERVICE_FAULTS: &[&str] = &["kill_proxy", "kill_outage_monitor", "pause_producer"];

/// Why a mutating request is refused, if it is.
fn refusal(req: &HttpRequest, token: &Option<String>) -> Option<HttpResponse> {
    let Some(token) = token else {
        return Some(HttpResponse::Unauthorized().json(json!({"error": "mutating endpoints (faults, reload) are disabled: no admin token configured (admin.token or FLROUTER_ADMIN_TOKEN)"})));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token.as_str()) {
        None
    } else {
        Some(
            HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .json(json!({"error": "missing or wrong bearer token"})),
        )
    }
}

async fn fault(req: HttpRequest, st: web::Data<AdminSlot>, body: web::Bytes) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    let s = &s;
    if let Some(r) = refusal(&req, &s.token) {
        return r;
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return HttpResponse::BadRequest().json(json!({"error": format!("bad fault: {e}")}))
        }
    };
    let action = value["action"].as_str().unwrap_or_default().to_string();
    warn!(fault = %value, "fault injected");
    let applied = if SERVICE_FAULTS.contains(&action.as_str()) {
        match serde_json::from_value::<Fault>(value.clone()) {
            Ok(f) => apply(s, f),
            Err(e) => Err((StatusCode::BAD_REQUEST, format!("bad fault: {e}"))),
        }
    } else {
        match &s.extras {
            Some(x) => x.fault(value.clone()).await,
            None => Err((
                StatusCode::CONFLICT,
                format!("fault {action:?} needs the tooling in this process (simulated FLs, the embedded broker, the load: fl-router-tools stage); this router applies {SERVICE_FAULTS:?}"),
            )),
        }
    };
    match applied {
        Ok(()) => HttpResponse::Ok().json(json!({"ok": true, "applied": value})),
        Err((status, msg)) => HttpResponse::build(status).json(json!({"error": msg})),
    }
}

/// Reads the configuration file again and applies a changed FL list (`crate::reload`):
/// `202` with the plan when it starts, `409` with the reason when it is refused.
async fn reload(req: HttpRequest, st: web::Data<AdminSlot>) -> HttpResponse {
    let Some(s) = st.current() else {
        return starting();
    };
    if let Some(r) = refusal(&req, &s.token) {
        return r;
    }
    let Some(tx) = &st.reload else {
        return HttpResponse::NotFound()
            .json(json!({"error": "this process does not reload (the embedded demo)"}));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = crate::reload::Request {
        reply: Some(reply),
        source: "admin API",
    };
    if tx.send(request).is_err() {
        return HttpResponse::ServiceUnavailable().json(json!({"error": "shutting down"}));
    }
    match answer.await {
        Ok(Ok(plan)) => HttpResponse::Accepted().json(json!({"reloading": true, "plan": plan})),
        Ok(Err(e)) => HttpResponse::Conflict().json(json!({"error": e.to_string()})),
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({"error": "shutting down"})),
    }
}

fn apply(s: &AdminState, fault: Fault) -> Result<(), Refusal> {
    let bad = |e: fl_router_actors::EngineError| (StatusCode::BAD_REQUEST, e.to_string());
    match fault {
        Fault::KillProxy { fl } => s.engine.restart_fl_proxy(&fl).map_err(bad)?,
        Fault::KillOutageMonitor => s.engine.restart_outage_monitor().map_err(bad)?,
        Fault::PauseProducer { ms } => {
            let outbox = s
                .outbox
                .clone()
                .ok_or((StatusCode::CONFLICT, "no producer".to_string()))?;
            outbox.pause();
            actix_rt::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                outbox.resume();
            });
        }
    }
    Ok(())
}
