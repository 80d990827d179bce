//! Restarts, several instances, and concurrent registrations: ids stay unique and stable.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// Polls `check` until it returns true, for at most `timeout`.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything a registry answers about `subjects`: versions, and per version the id and schema.
fn snapshot(url: &str, subjects: &[String]) -> BTreeMap<(String, u64), (u64, serde_json::Value)> {
    let mut all = BTreeMap::new();
    for subject in subjects {
        let (status, body) = get(&format!("{url}/subjects/{subject}/versions"));
        assert_eq!(status, 200, "{subject}: {body}");
        for version in json(&body).as_array().unwrap() {
            let version = version.as_u64().unwrap();
            let found = json(&get(&format!("{url}/subjects/{subject}/versions/{version}")).1);
            let schema = json(found["schema"].as_str().unwrap());
            all.insert((subject.clone(), version), (found["id"].as_u64().unwrap(), schema));
        }
    }
    all
}

#[test]
fn a_killed_registry_restarts_with_every_id_and_two_instances_agree() {
    let topic = unique_topic("restart");
    let first = RegistryProcess::start(&topic);
    let url = first.url.clone();
    put(&format!("{url}/config"), r#"{"compatibility":"NONE"}"#);
    let subjects: Vec<String> = (0..100).map(|s| format!("subject-{s:03}")).collect();
    let mut registered: BTreeMap<u32, serde_json::Value> = BTreeMap::new();
    let started = Instant::now();
    for version in 0..10 {
        for (s, subject) in subjects.iter().enumerate() {
            // 1 000 distinct schemas: subject s, version v has fields f0..fv in record S<s>.
            let fields: Vec<String> = (0..=version).map(|f| format!("f{f}")).collect();
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            let schema = record_schema(&format!("S{s}"), &fields);
            let id = register(&url, subject, &schema);
            assert!(registered.insert(id, json(&schema)).is_none(), "id {id} handed out twice");
        }
    }
    eprintln!("registered 1000 schemas in {:?}", started.elapsed());
    assert_eq!(registered.len(), 1000);
    let before = snapshot(&url, &subjects);
    assert_eq!(before.len(), 1000);
    first.kill9();

    let restarted = RegistryProcess::start(&topic);
    let second = RegistryProcess::start(&topic);
    for (id, schema) in &registered {
        for registry in [&restarted, &second] {
            let (status, body) = get(&format!("{}/schemas/ids/{id}", registry.url));
            assert_eq!(status, 200, "id {id} after the restart: {body}");
            assert_eq!(&json(json(&body)["schema"].as_str().unwrap()), schema, "id {id} resolves to another schema");
        }
    }
    assert_eq!(snapshot(&restarted.url, &subjects), before, "the restarted registry answers differently");
    assert_eq!(snapshot(&second.url, &subjects), before, "a second instance answers differently");
    assert_eq!(json(&get(&format!("{}/config", second.url)).1), json!({ "compatibilityLevel": "NONE" }));

    // A schema registered through one instance is served by the other, with a new id.
    let new_id = register(&second.url, "late", &record_schema("Late", &["x"]));
    assert_eq!(new_id, 1001, "ids continue after the restart");
    eventually(Duration::from_secs(10), "the other instance sees the new schema", || {
        get(&format!("{}/schemas/ids/{new_id}", restarted.url)).0 == 200
    });
    assert_eq!(
        json(&get(&format!("{}/subjects/late/versions/1", restarted.url)).1)["id"],
        json(&get(&format!("{}/subjects/late/versions/1", second.url)).1)["id"]
    );
}

/// Registers `count` schemas of its own from `clients` threads spread over `urls`; returns
/// (schema, id) pairs.
fn register_concurrently(urls: &[String], clients: usize, count: usize, tag: &str) -> Vec<(serde_json::Value, u32)> {
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let url = urls[client % urls.len()].clone();
            let tag = tag.to_string();
            std::thread::spawn(move || {
                (0..count)
                    .map(|i| {
                        let schema = record_schema(&format!("{tag}C{client}N{i}"), &["a"]);
                        let id = register(&url, &format!("{tag}-{client}-{i}"), &schema);
                        (json(&schema), id)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads.into_iter().flat_map(|t| t.join().expect("a client thread panicked")).collect()
}

fn assert_distinct_and_resolvable(urls: &[String], results: &[(serde_json::Value, u32)]) {
    let ids: BTreeSet<u32> = results.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), results.len(), "an id was handed out twice: {results:?}");
    for url in urls {
        for (schema, id) in results {
            eventually(Duration::from_secs(10), &format!("id {id} at {url}"), || {
                let (status, body) = get(&format!("{url}/schemas/ids/{id}"));
                status == 200 && &json(json(&body)["schema"].as_str().unwrap()) == schema
            });
        }
    }
}

#[test]
fn eight_clients_registering_at_once_get_distinct_ids() {
    let registry = RegistryProcess::start(&unique_topic("concurrent"));
    let urls = vec![registry.url.clone()];
    let results = register_concurrently(&urls, 8, 25, "one");
    assert_eq!(results.len(), 200);
    assert_distinct_and_resolvable(&urls, &results);
    assert_eq!(json(&get(&format!("{}/subjects", registry.url)).1).as_array().unwrap().len(), 200, "none lost");
}

#[test]
fn two_instances_writing_at_once_never_share_an_id() {
    let topic = unique_topic("two-writers");
    let a = RegistryProcess::start(&topic);
    let b = RegistryProcess::start(&topic);
    let urls = vec![a.url.clone(), b.url.clone()];
    let results = register_concurrently(&urls, 8, 10, "two");
    assert_eq!(results.len(), 80);
    assert_distinct_and_resolvable(&urls, &results);
    for url in &urls {
        eventually(Duration::from_secs(10), "every subject on both instances", || {
            json(&get(&format!("{url}/subjects")).1).as_array().unwrap().len() == 80
        });
    }
}
