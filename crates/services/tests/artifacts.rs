//! Artifact generation against deletes, on a real SQLite store: a delete that arrives while a
//! generation of the artifact runs waits for it and then stands (the generation cannot bring
//! the artifact back), and an artifact deleted before its generation's turn is skipped.

use async_trait::async_trait;
use infrastream_auth::JwtKeys;
use infrastream_config::Settings;
use infrastream_core::error::DomainError;
use infrastream_core::{EventName, Position, Role, SavedQuery};
use infrastream_services::artifacts::{
    self, Artifact, Definition, DefinitionValues, GenerateOutcome,
};
use infrastream_services::nodes::{self, NodeKind, Scope};
use infrastream_services::{
    Caller, CredentialCache, InProcessLocks, OperationKind, QueryOutcome, QueryRunner, Services,
};
use infrastream_store::sqlite::{SqliteOptions, SqliteStore};
use infrastream_store::{Change, Commit, Store};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Answers `{"x": <target id>, "n": <run number>}`; while `block` is set, each run announces
/// itself on `entered` and waits on `release`.
#[derive(Default)]
struct FakeRunner {
    runs: AtomicU64,
    block: AtomicBool,
    entered: Notify,
    release: Notify,
    running: Mutex<Option<String>>,
}

#[async_trait]
impl QueryRunner for FakeRunner {
    async fn run(&self, _: &str, variables: Value, _: &Caller, _: &str) -> QueryOutcome {
        let id = variables["id"].as_str().unwrap_or_default().to_owned();
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        if self.block.load(Ordering::SeqCst) {
            *self.running.lock().unwrap() = Some(id.clone());
            self.entered.notify_one();
            self.release.notified().await;
        }
        QueryOutcome::Data(json!({"x": id, "n": n}))
    }

    async fn validate(&self, _: &str) -> Result<(), String> {
        Ok(())
    }

    fn operation_kind(&self, _: &str) -> Option<OperationKind> {
        Some(OperationKind::Query)
    }
}

struct Fixture {
    services: Services,
    runner: Arc<FakeRunner>,
    caller: Caller,
    _dir: tempfile::TempDir,
}

async fn fixture(settings: Settings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
            .await
            .unwrap(),
    );
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..settings
    };
    let login_throttle = Arc::new(infrastream_services::LoginThrottle::new(&settings));
    let objects = infrastream_services::ObjectStore::new(&settings.data_dir);
    let services = Services {
        bus: infrastream_bus::Bus::start(store.clone(), 1024),
        store,
        settings: Arc::new(settings),
        jwt: Arc::new(JwtKeys::new(b"test secret")),
        deployment_id: "test".into(),
        credentials: Arc::new(CredentialCache::new(Duration::from_secs(1), 1000)),
        locks: Arc::new(InProcessLocks::default()),
        objects,
        queries: Default::default(),
        passwords: Arc::new(infrastream_services::PasswordPool::new(1, 8)),
        login_throttle,
    };
    let runner = Arc::new(FakeRunner::default());
    services.queries.install(runner.clone());
    services
        .store
        .commit(Commit {
            changes: vec![Change::InsertSavedQuery(SavedQuery {
                id: uuid::Uuid::now_v7().to_string(),
                name: "q".into(),
                query: "query { x }".into(),
                description: None,
            })],
            events: vec![],
        })
        .await
        .unwrap();
    let caller = Caller {
        account: None,
        role: Role::Admin,
    };
    let at = Scope {
        caller: &caller,
        branch: "main",
    };
    nodes::create::<Definition>(
        &services,
        at,
        None,
        DefinitionValues {
            name: Some("d".into()),
            artifact_name: Some("a".into()),
            content_type: Some("text/plain".into()),
            query: Some("q".into()),
            template: Some("{{ x }} {{ n }}".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Fixture {
        services,
        runner,
        caller,
        _dir: dir,
    }
}

impl Fixture {
    /// Deletes artifact `id` as the generic operation does.
    async fn delete(&self, id: &str) {
        let at = Scope {
            caller: &self.caller,
            branch: "main",
        };
        nodes::delete::<Artifact>(&self.services, at, Some(id.to_owned()), None)
            .await
            .unwrap();
    }

    async fn generate(&self, targets: Option<Vec<&str>>) -> Vec<artifacts::GeneratedArtifact> {
        let targets = targets.map(|t| t.into_iter().map(String::from).collect());
        artifacts::generate(&self.services, &self.caller, "main", "d", targets)
            .await
            .unwrap()
    }

    /// Positions of the artifact events of artifact `id`.
    async fn event_positions(&self, id: &str) -> Vec<Position> {
        self.services
            .store
            .read_after(Position::ZERO, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                [EventName::ARTIFACT_CREATED, EventName::ARTIFACT_UPDATED]
                    .contains(&e.name.as_str())
                    && e.primary_node.as_ref().is_some_and(|n| n.id == id)
            })
            .map(|e| e.position)
            .collect()
    }

    fn head(&self) -> Position {
        *self.services.store.head().borrow()
    }
}

/// Waits (bounded) for the blocked run to announce itself.
async fn entered(runner: &FakeRunner) {
    tokio::time::timeout(Duration::from_secs(10), runner.entered.notified())
        .await
        .expect("the generation runs the query");
}

#[tokio::test]
async fn a_delete_during_generation_stands() {
    let f = Arc::new(fixture(Settings::default()).await);
    let first = f.generate(Some(vec!["InfraDevice:t1"])).await;
    assert_eq!(first[0].outcome, GenerateOutcome::Created);
    let id = first[0].artifact.id.clone();

    f.runner.block.store(true, Ordering::SeqCst);
    let generation = {
        let f = f.clone();
        tokio::spawn(async move { f.generate(Some(vec!["InfraDevice:t1"])).await })
    };
    entered(&f.runner).await;
    let delete = {
        let (f, id) = (f.clone(), id.clone());
        tokio::spawn(async move {
            f.delete(&id).await;
            f.head()
        })
    };
    // The delete waits for the generation that holds the artifact's lock.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !delete.is_finished(),
        "the delete did not wait for the running generation"
    );
    f.runner.release.notify_one();
    let generated = generation.await.unwrap();
    let head_after_delete = tokio::time::timeout(Duration::from_secs(10), delete)
        .await
        .expect("the delete finishes once the generation is done")
        .unwrap();

    assert_eq!(generated[0].outcome, GenerateOutcome::Updated);
    assert!(
        Artifact::by_id(&f.services, &id).await.unwrap().is_none(),
        "the generation brought the deleted artifact back"
    );
    let events = f.event_positions(&id).await;
    assert_eq!(events.len(), 2, "created, then updated: {events:?}");
    assert!(
        events.iter().all(|p| *p <= head_after_delete),
        "an artifact event committed after the delete: {events:?} > {head_after_delete:?}"
    );
}

#[tokio::test]
async fn an_artifact_deleted_before_its_turn_is_not_regenerated() {
    let f = Arc::new(fixture(Settings::default()).await);
    let first = f
        .generate(Some(vec!["InfraDevice:t1", "InfraDevice:t2"]))
        .await;
    assert_eq!(first.len(), 2);

    // Regenerate every artifact of the definition; the first run blocks.
    f.runner.block.store(true, Ordering::SeqCst);
    let generation = {
        let f = f.clone();
        tokio::spawn(async move { f.generate(None).await })
    };
    entered(&f.runner).await;
    let running = f.runner.running.lock().unwrap().clone().unwrap();
    let other = first
        .iter()
        .find(|g| g.artifact.data.target.id != running)
        .unwrap()
        .artifact
        .id
        .clone();
    // Its lock is free: the delete is done at once.
    tokio::time::timeout(Duration::from_secs(10), f.delete(&other))
        .await
        .expect("deleting an artifact that is not being generated does not wait");
    let head_after_delete = f.head();
    f.runner.block.store(false, Ordering::SeqCst);
    f.runner.release.notify_one();
    let generated = generation.await.unwrap();

    assert_eq!(generated.len(), 1, "{generated:?}");
    assert_eq!(generated[0].artifact.data.target.id, running);
    assert!(
        Artifact::by_id(&f.services, &other)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.event_positions(&other)
            .await
            .iter()
            .all(|p| *p <= head_after_delete)
    );
}

#[tokio::test]
async fn targets_per_request_are_limited_by_the_setting() {
    let f = fixture(Settings {
        artifact_max_targets_per_request: 2,
        ..Settings::default()
    })
    .await;
    let targets = ["A:1", "A:2", "A:3"].map(String::from).to_vec();
    let e = artifacts::generate(&f.services, &f.caller, "main", "d", Some(targets))
        .await
        .unwrap_err()
        .user_error();
    assert_eq!((e.code, e.http_status()), ("LIMIT_EXCEEDED", 429));
    assert_eq!(
        e.message,
        "The request names 3 targets; at most 2 are allowed per request (setting artifact_max_targets_per_request)"
    );
    assert_eq!(f.generate(Some(vec!["A:1", "A:2"])).await.len(), 2);
}
