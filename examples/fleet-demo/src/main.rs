//! The fleet demo: a few real game containers on the local Docker engine, broken in each way
//! the reconciler knows about, with a narration of what it does at every step.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  this demo
//!              ^
//!              +-- adapters: Docker (bollard), engine HTTP, store (a temporary SQLite file)
//! ```
//!
//! It builds the test-engine image if it is missing (`scripts/build-test-image.sh`), makes a
//! Docker network and a SQLite store of its own, starts labelled game containers, registers
//! their games, then runs passes one at a time — printing each plan before applying it — while
//! it kills, duplicates, unlabels and removes containers and stops an engine. It ends with the
//! loop running, woken by a Docker event. Everything it made is removed at the end, also on
//! error and on Ctrl-C. The containers carry a label value of their own, so the demo never
//! touches other containers.
//!
//! Run it with `cargo run -p galaxy-runtime-example-fleet-demo` (it needs Docker).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use async_trait::async_trait;
use galaxy_runtime_docker::{ContainerEvents, DockerAdapter, EventsConfig};
use galaxy_runtime_engine_http::HttpEngine;
use galaxy_runtime_memory::{MemoryCache, MemoryScheduler};
use galaxy_runtime_model::LobbyEvent;
use galaxy_runtime_model::{
    Config, EngineAddressing, GameId, GameProjection, JobResult, RuntimeStatus,
};
use galaxy_runtime_ports::{Component, GameCatalog, LabelFilter, LobbyPort, PortResult};
use galaxy_runtime_reconciler::{Action, Finding, PassReport, Reconciler};
use galaxy_runtime_store::{Store, StoreConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The image of the fake engines (busybox httpd serving `/www/status` on 8080).
const IMAGE: &str = "galaxy-runtime-test-engine";
/// The label on everything the demo makes, with the demo's id.
const DEMO_LABEL: &str = "galaxy-runtime.demo";
/// The engine's command: httpd in the background, its pid kept so that the demo can stop the
/// engine while the container keeps running.
const ENGINE_COMMAND: &str = "/bin/busybox httpd -f -p 8080 -h /www & echo $! > /www/httpd.pid; \
                              exec /bin/busybox sleep 2147483647";

/// What the demo made, removed on drop (and by the Ctrl-C handler).
struct Demo {
    id: String,
    network: String,
    dir: PathBuf,
    cleaned: AtomicBool,
}

impl Demo {
    fn new() -> anyhow::Result<Self> {
        let id = GameId::new_random().as_uuid().simple().to_string()[..8].to_owned();
        let dir = std::env::temp_dir().join(format!("galaxy-runtime-demo-{id}"));
        std::fs::create_dir_all(&dir).context("creating the demo's directory")?;
        Ok(Self {
            network: format!("galaxy-demo-{id}"),
            id,
            dir,
            cleaned: AtomicBool::new(false),
        })
    }

    fn label(&self) -> String {
        format!("{DEMO_LABEL}={}", self.id)
    }

    /// Removes the containers, the network and the directory; runs once.
    fn clean_up(&self) {
        if self.cleaned.swap(true, Ordering::SeqCst) {
            return;
        }
        let filter = format!("label={}", self.label());
        let ids = docker_quiet(&["ps", "-aq", "--filter", &filter]).unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = docker_quiet(&args);
        }
        let _ = docker_quiet(&["network", "rm", &self.network]);
        let _ = std::fs::remove_dir_all(&self.dir);
        println!(
            "\nCleaned up: the demo's containers, network {} and store are gone.",
            self.network
        );
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// Runs `docker ARGS`, returning standard output; fails with Docker's message.
fn docker_quiet(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("the docker command cannot run: install the Docker CLI")?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `docker ARGS` and shows it, as a person would type it.
fn docker(args: &[&str]) -> anyhow::Result<String> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == ENGINE_COMMAND {
                "'<the engine: httpd on 8080>'".to_owned()
            } else if a.contains(' ') {
                format!("'{a}'")
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    println!("  $ docker {}", shown.join(" "));
    docker_quiet(args)
}

/// The names people read instead of UUIDs.
#[derive(Default)]
struct Names(Mutex<BTreeMap<GameId, String>>);

impl Names {
    fn add(&self, game_id: GameId, name: &str) {
        if let Ok(mut names) = self.0.lock() {
            names.insert(game_id, name.to_owned());
        }
    }

    fn of(&self, game_id: GameId) -> String {
        let short = &game_id.to_string()[..8];
        match self.0.lock().ok().and_then(|n| n.get(&game_id).cloned()) {
            Some(name) => format!("{name} ({short}…)"),
            None => format!("{short}…"),
        }
    }
}

/// The demo's lobby: says what it hears, and passes it on to the demo.
struct NarratingLobby {
    names: Arc<Names>,
    heard: mpsc::UnboundedSender<(GameId, JobResult)>,
}

#[async_trait]
impl LobbyPort for NarratingLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        let result = &event.result;
        println!(
            "      lobby told: {} is {} ({})",
            self.names.of(event.game_id),
            result.status,
            result.message
        );
        // The demo may have stopped listening; the lobby's job is done either way.
        let _ = self.heard.send((event.game_id, result.clone()));
        Ok(())
    }
}

fn short(container_id: &str) -> &str {
    container_id.get(..12).unwrap_or(container_id)
}

/// One line per action, in plain words.
fn describe_action(action: &Action, names: &Names) -> String {
    let who = names.of(action.game_id());
    match action {
        Action::Adopt(adoption) => format!(
            "adopt       {who}: container {} runs it but it has no record; record it as {}",
            short(&adoption.container_id),
            adoption.status
        ),
        Action::Rebind(rebinding) => format!(
            "rebind      {who}: the record follows container {}, which really runs it",
            short(&rebinding.container_id)
        ),
        Action::SetStatus {
            from, to, message, ..
        } => format!("set_status  {who}: {from} -> {to} ({message})"),
        Action::SetProbeFailures { failures, .. } => {
            format!("probes      {who}: consecutive failed probes -> {failures}")
        }
        Action::PublishSnapshot { state, .. } => {
            format!("snapshot    {who}: the engine answered {state}")
        }
    }
}

/// One line per finding, in plain words.
fn describe_finding(finding: &Finding, names: &Names) -> String {
    match finding {
        Finding::OrphanContainer {
            game_id,
            container_id,
        } => format!(
            "orphan      container {} runs {}, a game the store does not know: left alone",
            short(container_id),
            names.of(*game_id)
        ),
        Finding::DuplicateContainer {
            game_id,
            container_id,
            kept_container_id,
            ..
        } => format!(
            "duplicate   container {} also claims {}; the recorded {} is kept, the other left alone",
            short(container_id),
            names.of(*game_id),
            short(kept_container_id)
        ),
        Finding::UnrecognizedContainer { container_id, name } => format!(
            "unrecognized container {} named {name:?} is not <prefix><game id>",
            short(container_id)
        ),
        Finding::StaleContainer {
            game_id,
            container_id,
            status,
        } => format!(
            "stale       {} is {status} but container {} still exists",
            names.of(*game_id),
            short(container_id)
        ),
        Finding::AwaitingContainer { game_id } => format!(
            "awaiting    {} is starting; its container is not there yet",
            names.of(*game_id)
        ),
        Finding::AdoptionUndecided {
            game_id,
            container_id,
            error,
        } => format!(
            "undecided   container {} runs {}, whose projection could not be loaded ({error})",
            short(container_id),
            names.of(*game_id)
        ),
        Finding::InvalidLabel {
            container_id,
            label,
        } => format!(
            "label       container {} has an unacceptable {label} label",
            short(container_id)
        ),
        Finding::RemovalGuardTripped {
            would_remove, live, ..
        } => {
            format!("guard       {would_remove} of {live} live records would be removed: none is")
        }
        Finding::HostUnavailable { host, error, .. } => {
            format!("host        {host:?} did not list ({error}): its games are left alone")
        }
    }
}

/// The whole demo's state.
struct Run {
    demo: Arc<Demo>,
    names: Arc<Names>,
    config: Config,
    store: Store,
    reconciler: Reconciler,
    docker: DockerAdapter,
    heard: mpsc::UnboundedReceiver<(GameId, JobResult)>,
}

impl Run {
    /// One pass, narrated: the plan first, then what was applied.
    async fn pass(&self) -> anyhow::Result<PassReport> {
        let (scenario, plan) = self.reconciler.tick_dry_run().await.context("observing")?;
        println!(
            "  The reconciler sees {} managed containers and {} records, and plans:",
            scenario.containers.len(),
            scenario.records.len()
        );
        if plan.actions.is_empty() && plan.findings.is_empty() {
            println!("      nothing: containers and records agree");
        }
        for action in &plan.actions {
            println!("    + {}", describe_action(action, &self.names));
        }
        for finding in &plan.findings {
            println!("    ! {}", describe_finding(finding, &self.names));
        }
        let report = self
            .reconciler
            .apply(&scenario, &plan)
            .await
            .context("applying the plan")?;
        // The events of the pass's changes wait in the outbox; the loop's relay would deliver
        // them beside the passes, the demo asks for a round itself.
        self.reconciler
            .deliver_events()
            .await
            .context("delivering the lobby's events")?;
        println!(
            "  Applied {} of {} actions.",
            report.applied_total(),
            plan.actions.len()
        );
        Ok(report)
    }

    async fn status(&self, game_id: GameId) -> anyhow::Result<Option<RuntimeStatus>> {
        Ok(
            galaxy_runtime_ports::StorePort::get_record(&self.store, game_id)
                .await?
                .map(|r| r.status),
        )
    }

    async fn expect(&self, game_id: GameId, status: RuntimeStatus) -> anyhow::Result<()> {
        let actual = self.status(game_id).await?;
        ensure!(
            actual == Some(status),
            "{} should be {status}, is {actual:?}",
            self.names.of(game_id)
        );
        Ok(())
    }

    /// The records, as `galaxy-runtime status` shows them.
    async fn table(&self) -> anyhow::Result<()> {
        let records = self.store.list_stored_records().await?;
        let snapshots = self.store.snapshot_times().await?;
        println!(
            "\n  {:<22} {:<19} {:<13} {:<7} snapshot",
            "game", "status", "container", "probes"
        );
        for stored in records {
            let r = &stored.record;
            println!(
                "  {:<22} {:<19} {:<13} {:<7} {}",
                self.names.of(r.game_id),
                r.status.as_str(),
                short(&r.current_container_id),
                r.probe_failures,
                if snapshots.contains_key(&r.game_id) {
                    "yes"
                } else {
                    "-"
                }
            );
        }
        Ok(())
    }

    /// Starts an engine container for `game_id`, named with `name_id` (the game id as text,
    /// in whatever case), labelled managed unless `managed` is false.
    fn start(&self, name_id: &str, managed: bool) -> anyhow::Result<String> {
        let name = format!("{}{name_id}", self.config.container_name_prefix);
        let demo = self.demo.label();
        let managed_label = format!(
            "{}={}",
            self.config.managed_label, self.config.managed_label_value
        );
        let version = format!("{}=1.0.0", self.config.engine_version_label);
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &self.demo.network,
            "--label",
            &demo,
            "--label",
            &version,
        ];
        if managed {
            args.extend(["--label", &managed_label]);
        }
        args.extend([IMAGE, "/bin/busybox", "sh", "-c", ENGINE_COMMAND]);
        docker(&args)
    }

    fn container_of(&self, game_id: GameId) -> String {
        format!("{}{game_id}", self.config.container_name_prefix)
    }

    /// Waits until the engine of a container answers (its httpd has started).
    fn wait_engine(&self, container: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while docker_quiet(&[
            "exec",
            container,
            "/bin/busybox",
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1:8080/status",
        ])
        .is_err()
        {
            ensure!(
                Instant::now() < deadline,
                "the engine in {container} never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

fn step(number: u32, title: &str, why: &str) {
    println!("\n== {number}. {title}");
    println!("  {why}");
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ensure_image() -> anyhow::Result<()> {
    if docker_quiet(&["image", "inspect", IMAGE]).is_ok() {
        return Ok(());
    }
    let script = repository_root().join("scripts/build-test-image.sh");
    println!(
        "The image {IMAGE} is missing: building it with {}",
        script.display()
    );
    let status = Command::new(&script)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        status.success(),
        "{} failed; run it by hand (as root: it may install busybox-static)",
        script.display()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    docker_quiet(&["info", "--format", "{{.ServerVersion}}"]).context(
        "the demo needs a running Docker daemon: start it (as root: `service docker start`) or \
         point DOCKER_HOST at it",
    )?;
    ensure_image()?;
    let demo = Arc::new(Demo::new()?);
    {
        // Ctrl-C: remove what the demo made before leaving.
        let demo = Arc::clone(&demo);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                demo.clean_up();
                std::process::exit(130);
            }
        });
    }
    let result = demo_steps(Arc::clone(&demo)).await;
    demo.clean_up();
    result
}

async fn demo_steps(demo: Arc<Demo>) -> anyhow::Result<()> {
    println!("galaxy-runtime fleet demo {}", demo.id);
    step(
        0,
        "Set-up",
        "A Docker network, a SQLite store in a temporary directory, and a reconciler that \
         manages only the containers labelled for this demo.",
    );
    docker(&["network", "create", "--label", &demo.label(), &demo.network])?;
    let config = Config {
        managed_label_value: format!("demo-{}", demo.id),
        docker_network: demo.network.clone(),
        // The demo runs on the Docker host: engines are reached at their container address.
        engine_addressing: EngineAddressing::ContainerIp,
        failure_threshold: NonZeroU32::new(2).context("2 is not zero")?,
        probe_timeout: Duration::from_secs(1),
        // Passes are run by hand until the last step, where Docker events wake the loop.
        reconcile_interval: Duration::from_secs(3600),
        event_debounce: Duration::from_millis(200),
        ..Config::default()
    };
    let store_url = format!("sqlite://{}", demo.dir.join("runtime.db").display());
    let store = Store::connect(&StoreConfig::new(&store_url))
        .await
        .context("opening the demo's store")?;
    let docker_adapter = DockerAdapter::connect_from_env()
        .await
        .context("connecting to Docker")?;
    let names = Arc::new(Names::default());
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let reconciler = Reconciler::builder()
        .docker(Arc::new(docker_adapter.clone()))
        .store(Arc::new(store.clone()))
        .engine(Arc::new(HttpEngine::from_config(&config)))
        .lobby(Arc::new(NarratingLobby {
            names: Arc::clone(&names),
            heard: heard_tx,
        }))
        .outbox(Arc::new(store.clone()))
        .cache(Arc::new(MemoryCache::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(config.clone())
        .build()?;
    println!(
        "  store {store_url}, managed label {}={}",
        config.managed_label, config.managed_label_value
    );
    let mut run = Run {
        demo: Arc::clone(&demo),
        names: Arc::clone(&names),
        config,
        store,
        reconciler,
        docker: docker_adapter,
        heard,
    };

    // Sorted ids, named in order: plans and tables list games by id, so they read a to e.
    let mut ids: Vec<GameId> = (0..5).map(|_| GameId::new_random()).collect();
    ids.sort();
    let games: Vec<(GameId, &str)> = ids
        .into_iter()
        .zip(["alpha", "bravo", "charlie", "delta", "echo"])
        .collect();
    let [alpha, bravo, charlie, delta, echo] = [0, 1, 2, 3, 4].map(|i| games[i].0);
    let foxtrot = GameId::new_random();
    for (game_id, name) in &games {
        names.add(*game_id, name);
    }
    names.add(foxtrot, "foxtrot");

    step(
        1,
        "Five games start, and the lobby registers them",
        "Each game runs in a container named galaxy-game-<game id>. The store knows the games \
         (their projections) but has no runtime records yet. A sixth container, foxtrot, runs \
         a game nobody registered.",
    );
    for (game_id, _) in &games {
        run.start(&game_id.to_string(), true)?;
        run.store
            .put_game(GameProjection {
                game_id: *game_id,
                turn_schedule: "0 */6 * * *".to_owned(),
            })
            .await?;
    }
    run.start(&foxtrot.to_string(), true)?;
    run.pass().await?;
    for (game_id, _) in &games {
        run.expect(*game_id, RuntimeStatus::Running).await?;
    }
    ensure!(
        run.status(foxtrot).await?.is_none(),
        "an orphan must not be adopted"
    );

    step(
        2,
        "The engines answer",
        "Every pass probes each live engine and publishes its status as the game's snapshot.",
    );
    for (game_id, _) in &games {
        run.wait_engine(&run.container_of(*game_id))?;
    }
    let report = run.pass().await?;
    ensure!(
        report.applied.get("publish_snapshot") == Some(&5),
        "five snapshots expected"
    );
    run.table().await?;

    step(
        3,
        "alpha's container is killed",
        "An exited container cannot answer: each pass counts a failed probe, and at the \
         failure threshold (2 here) the game becomes engine_unreachable.",
    );
    docker(&["kill", &run.container_of(alpha)])?;
    run.pass().await?;
    run.pass().await?;
    run.expect(alpha, RuntimeStatus::EngineUnreachable).await?;

    step(
        4,
        "bravo's container is duplicated",
        "A second container claims bravo (its name spells the game id in capitals, which \
         Docker sees as another name). The reconciler keeps the recorded one and reports the \
         other; it never removes containers.",
    );
    run.start(&bravo.to_string().to_uppercase(), true)?;
    let report = run.pass().await?;
    ensure!(
        report.findings.get("duplicate_container") == Some(&1),
        "a duplicate expected"
    );
    run.expect(bravo, RuntimeStatus::Running).await?;

    step(
        5,
        "charlie's container is replaced by an unlabelled one",
        "Containers without the managed label are not the reconciler's: it ignores them \
         entirely. For the reconciler charlie's container disappeared, so its record is marked \
         removed and the lobby is told.",
    );
    docker(&["rm", "-f", &run.container_of(charlie)])?;
    run.start(&charlie.to_string(), false)?;
    run.pass().await?;
    run.expect(charlie, RuntimeStatus::Removed).await?;

    step(
        6,
        "delta's engine stops, its container keeps running",
        "The container is fine but nothing answers on the engine port: failed probes, then \
         engine_unreachable. When the engine comes back, the next pass sees it running again.",
    );
    let delta_container = run.container_of(delta);
    docker(&[
        "exec",
        &delta_container,
        "/bin/busybox",
        "sh",
        "-c",
        "/bin/busybox kill $(/bin/busybox cat /www/httpd.pid)",
    ])?;
    run.pass().await?;
    run.pass().await?;
    run.expect(delta, RuntimeStatus::EngineUnreachable).await?;
    docker(&[
        "exec",
        "-d",
        &delta_container,
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ])?;
    run.wait_engine(&delta_container)?;
    run.pass().await?;
    run.expect(delta, RuntimeStatus::Running).await?;
    run.table().await?;

    step(
        7,
        "The loop runs; echo's container is removed",
        "`galaxy-runtime run` runs passes in a loop and Docker events wake it early: the \
         removal is noticed within a moment, not at the next periodic pass (an hour here).",
    );
    let cancel = CancellationToken::new();
    let filter = LabelFilter::single(&run.config.managed_label, &run.config.managed_label_value);
    let watcher = ContainerEvents::new(
        &run.docker,
        filter,
        EventsConfig::from_config(&run.config),
        run.reconciler.trigger_handle().into_fn(),
    )
    .spawn(cancel.child_token());
    let looping = tokio::spawn({
        let reconciler = run.reconciler.clone();
        let cancel = cancel.clone();
        async move { reconciler.run(cancel).await }
    });
    // The loop's start-up pass runs at once; drain what the lobby heard before.
    while run.heard.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(500)).await;
    let removed_at = Instant::now();
    docker(&["rm", "-f", &run.container_of(echo)])?;
    let heard = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match run.heard.recv().await {
                Some((game_id, _)) if game_id == echo => return Some(()),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await;
    ensure!(
        matches!(heard, Ok(Some(()))),
        "the loop should notice echo's removal within 15s"
    );
    println!(
        "  Noticed {:.1}s after the removal, woken by Docker's destroy event.",
        removed_at.elapsed().as_secs_f64()
    );
    cancel.cancel();
    looping.await??;
    let _ = watcher.await;
    run.expect(echo, RuntimeStatus::Removed).await?;

    step(
        8,
        "Where things stand",
        "What `galaxy-runtime status` would show.",
    );
    run.table().await?;
    run.store.close();
    println!("\nThe demo ran to its end: every step did what it says.");
    Ok(())
}
