//! The server starts, answers health, readiness and info, and runs a branch lifecycle end
//! to end.

use infrastream_testkit::TestServer;
use serde_json::json;

#[tokio::test]
async fn health_info_and_branch_lifecycle() {
    let s = TestServer::start().await;
    let health = s
        .http
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Readiness without credentials: the store can commit. Polled often, it stays cheap and
    // says the same.
    for _ in 0..20 {
        let ready = s.http.get(format!("{}/ready", s.url)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body, json!({"status": "ready"}));
    }
    let info: serde_json::Value = s
        .http
        .get(format!("{}/api/info", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        info["deployment_id"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let created = s
        .admin(r#"mutation { BranchCreate(data: {name: "feature/a", description: "d"}) { ok object { name status is_default origin_branch } } }"#, json!({}))
        .await;
    assert_eq!(
        created["BranchCreate"]["object"],
        json!({"name": "feature/a", "status": "OPEN", "is_default": false, "origin_branch": "main"})
    );
    let dup = s
        .admin_error(
            r#"mutation { BranchCreate(data: {name: "feature/a"}) { ok } }"#,
            json!({}),
        )
        .await;
    assert_eq!(dup, "The branch feature/a already exists");
    s.admin(
        r#"mutation { BranchMerge(data: {name: "feature/a"}) { ok object { status } } }"#,
        json!({}),
    )
    .await;
    let again = s
        .admin_error(
            r#"mutation { BranchMerge(data: {name: "feature/a"}) { ok } }"#,
            json!({}),
        )
        .await;
    assert!(again.contains("cannot be merged"), "{again}");
    for verb in ["Delete", "Merge", "Rebase"] {
        let e = s
            .admin_error(
                &format!("mutation {{ Branch{verb}(data: {{name: \"main\"}}) {{ ok }} }}"),
                json!({}),
            )
            .await;
        assert!(e.contains("default branch main cannot be"), "{verb}: {e}");
    }
    s.shutdown().await;
}
