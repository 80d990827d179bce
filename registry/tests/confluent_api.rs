//! The REST API driven with plain HTTP and Confluent's documented request and response bodies,
//! against a registry process on the real broker.

mod support;

use serde_json::json;
use support::*;

const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"cents","type":"long"}]}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"cents","type":"long"},{"name":"coupon","type":["null","string"],"default":null}]}"#;

#[test]
fn registers_and_reads_back_with_confluents_bodies() {
    let registry = RegistryProcess::start(&unique_topic("api"));
    let url = &registry.url;

    let (status, body) = post(&format!("{url}/subjects/orders-value/versions"), &register_body(ORDER_V1));
    assert_eq!((status, json(&body)), (200, json!({ "id": 1 })));
    assert_eq!(register(url, "orders-value", ORDER_V1), 1, "the same schema again: the same id");
    assert_eq!(register(url, "orders-value", ORDER_V2), 2);
    assert_eq!(register(url, "archive-value", ORDER_V2), 2, "the same schema in another subject: the same id");

    assert_eq!(json(&get(&format!("{url}/subjects")).1), json!(["archive-value", "orders-value"]));
    assert_eq!(json(&get(&format!("{url}/subjects/orders-value/versions")).1), json!([1, 2]));

    let v1 = json(&get(&format!("{url}/subjects/orders-value/versions/1")).1);
    assert_eq!(
        (v1["subject"].as_str(), v1["version"].as_u64(), v1["id"].as_u64()),
        (Some("orders-value"), Some(1), Some(1))
    );
    assert_eq!(json(v1["schema"].as_str().unwrap()), json(ORDER_V1), "the schema comes back as registered");
    let latest = json(&get(&format!("{url}/subjects/orders-value/versions/latest")).1);
    assert_eq!((latest["version"].as_u64(), latest["id"].as_u64()), (Some(2), Some(2)));
    let (status, raw) = get(&format!("{url}/subjects/orders-value/versions/2/schema"));
    assert_eq!((status, json(&raw)), (200, json(ORDER_V2)));

    assert_eq!(json(json(&get(&format!("{url}/schemas/ids/1")).1)["schema"].as_str().unwrap()), json(ORDER_V1));
    assert_eq!(json(&get(&format!("{url}/schemas/ids/2/schema")).1), json(ORDER_V2));
    assert_eq!(
        json(&get(&format!("{url}/schemas/ids/2/versions")).1),
        json!([{ "subject": "archive-value", "version": 1 }, { "subject": "orders-value", "version": 2 }])
    );

    let (status, body) = post(&format!("{url}/subjects/orders-value"), &register_body(ORDER_V1));
    let found = json(&body);
    assert_eq!((status, found["id"].as_u64(), found["version"].as_u64()), (200, Some(1), Some(1)), "{body}");
    assert_eq!(found["subject"], "orders-value");

    assert_eq!(json(&get(&format!("{url}/schemas/types")).1), json!(["AVRO"]));
    assert_eq!(json(&get(&format!("{url}/mode")).1), json!({ "mode": "READWRITE" }));
    assert_eq!(json(&get(&format!("{url}/config")).1), json!({ "compatibilityLevel": "BACKWARD" }));

    // Responses carry Confluent's content type.
    let response = ureq::get(&format!("{url}/subjects")).call().unwrap();
    assert_eq!(response.headers()["content-type"], "application/vnd.schemaregistry.v1+json");
}

/// Confluent's modes against evolutions of ORDER_V1: for each, whether registration is accepted,
/// and the field a refusal must name.
#[test]
fn compatibility_is_enforced_per_mode() {
    let registry = RegistryProcess::start(&unique_topic("compat"));
    let url = &registry.url;
    let field = |name: &str, ty: &str| json!({ "name": name, "type": ty });
    let order = |fields: Vec<serde_json::Value>| {
        json!({ "type": "record", "name": "Order", "namespace": "shop", "fields": fields }).to_string()
    };
    let id = || field("id", "string");
    let cents = || field("cents", "long");
    // (case, new schema, accepted under [NONE, BACKWARD, FORWARD, FULL], fields a refusal may name)
    let cases: [(&str, String, [bool; 4], &[&str]); 6] = [
        (
            "add a field with a default",
            order(vec![id(), cents(), json!({"name":"coupon","type":["null","string"],"default":null})]),
            [true, true, true, true],
            &[],
        ),
        (
            "add a field without a default",
            order(vec![id(), cents(), field("store", "string")]),
            [true, false, true, false],
            &["store"],
        ),
        ("remove a field without a default", order(vec![id()]), [true, true, false, false], &["cents"]),
        (
            "change a type (long to string)",
            order(vec![id(), field("cents", "string")]),
            [true, false, false, false],
            &["cents"],
        ),
        (
            "rename a field without an alias",
            order(vec![field("order_id", "string"), cents()]),
            [true, false, false, false],
            &["order_id", "id"],
        ),
        (
            "rename a field with an alias",
            order(vec![json!({"name":"order_id","type":"string","aliases":["id"]}), cents()]),
            [true, true, false, false],
            &["id"],
        ),
    ];
    let modes = [
        ("NONE", 0),
        ("BACKWARD", 1),
        ("BACKWARD_TRANSITIVE", 1),
        ("FORWARD", 2),
        ("FORWARD_TRANSITIVE", 2),
        ("FULL", 3),
        ("FULL_TRANSITIVE", 3),
    ];
    for (mode, column) in modes {
        for (i, (case, schema, accepted, names)) in cases.iter().enumerate() {
            let subject = format!("{}-{i}", mode.to_lowercase());
            let (status, body) = put(&format!("{url}/config/{subject}"), &json!({ "compatibility": mode }).to_string());
            assert_eq!((status, json(&body)), (200, json!({ "compatibility": mode })));
            register(url, &subject, ORDER_V1);

            let (status, body) = post(
                &format!("{url}/compatibility/subjects/{subject}/versions/latest?verbose=true"),
                &register_body(schema),
            );
            assert_eq!(status, 200, "{body}");
            let check = json(&body);
            assert_eq!(check["is_compatible"], accepted[column], "{mode}, {case}: {body}");

            let (status, body) = post(&format!("{url}/subjects/{subject}/versions"), &register_body(schema));
            if accepted[column] {
                assert_eq!(status, 200, "{mode}, {case}: {body}");
                assert_eq!(json(&get(&format!("{url}/subjects/{subject}/versions")).1), json!([1, 2]));
            } else {
                assert_eq!(status, 409, "{mode}, {case}: {body}");
                let error = json(&body);
                assert_eq!(error["error_code"], 409, "{body}");
                let message = error["message"].as_str().unwrap();
                let named = |text: &str| names.iter().any(|n| text.contains(&format!("'{n}'")));
                assert!(named(message), "{mode}, {case}: the message should name one of {names:?}: {message}");
                assert!(message.contains(mode), "{message}");
                assert!(named(check["messages"][0].as_str().unwrap()), "{body}");
                assert_eq!(
                    json(&get(&format!("{url}/subjects/{subject}/versions")).1),
                    json!([1]),
                    "nothing registered"
                );
            }
        }
    }
}

#[test]
fn transitive_modes_check_every_earlier_version() {
    let registry = RegistryProcess::start(&unique_topic("transitive"));
    let url = &registry.url;
    let v1 = record_schema("Count", &["a", "b"]);
    let v2 = record_schema("Count", &["a"]); // drops b: backward compatible
                                             // b comes back as a string with a default: it reads v2's data, not v1's (whose b is an int).
    let v3 = json!({"type":"record","name":"Count","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]})
        .to_string();
    for (mode, accepted) in [("BACKWARD", true), ("BACKWARD_TRANSITIVE", false)] {
        let subject = mode.to_lowercase();
        put(&format!("{url}/config/{subject}"), &json!({ "compatibility": mode }).to_string());
        register(url, &subject, &v1);
        register(url, &subject, &v2);
        let (status, body) = post(&format!("{url}/subjects/{subject}/versions"), &register_body(&v3));
        if accepted {
            assert_eq!(status, 200, "{mode}: {body}");
        } else {
            assert_eq!(status, 409, "{mode}: {body}");
            assert!(body.contains("version 1") && body.contains("'b'"), "{body}");
        }
    }
}

#[test]
fn deletes_are_soft_then_permanent() {
    let registry = RegistryProcess::start(&unique_topic("delete"));
    let url = &registry.url;
    register(url, "s", ORDER_V1);
    register(url, "s", ORDER_V2);
    let code = |(status, body): (u16, String)| (status, json(&body)["error_code"].as_u64().unwrap_or(0));

    assert_eq!(code(delete(&format!("{url}/subjects/s/versions/1?permanent=true"))), (404, 40407));
    assert_eq!(delete(&format!("{url}/subjects/s/versions/1")), (200, "1".into()));
    assert_eq!(code(delete(&format!("{url}/subjects/s/versions/1"))), (404, 40406));
    assert_eq!(json(&get(&format!("{url}/subjects/s/versions")).1), json!([2]));
    assert_eq!(json(&get(&format!("{url}/subjects/s/versions?deleted=true")).1), json!([1, 2]));
    assert_eq!(code(get(&format!("{url}/subjects/s/versions/1"))), (404, 40402));
    assert_eq!(get(&format!("{url}/subjects/s/versions/1?deleted=true")).0, 200);
    assert_eq!(get(&format!("{url}/schemas/ids/1")).0, 200, "a soft-deleted version's schema still resolves");

    assert_eq!(code(delete(&format!("{url}/subjects/s?permanent=true"))), (404, 40405));
    assert_eq!(json(&delete(&format!("{url}/subjects/s")).1), json!([2]));
    assert_eq!(code(delete(&format!("{url}/subjects/s"))), (404, 40404));
    assert_eq!(json(&get(&format!("{url}/subjects")).1), json!([]));
    assert_eq!(json(&get(&format!("{url}/subjects?deleted=true")).1), json!(["s"]));
    assert_eq!(json(&delete(&format!("{url}/subjects/s?permanent=true")).1), json!([1, 2]));
    assert_eq!(json(&get(&format!("{url}/subjects?deleted=true")).1), json!([]));
    assert_eq!(code(get(&format!("{url}/schemas/ids/1"))), (404, 40403));
    // Ids are not handed out again after a permanent delete.
    assert_eq!(register(url, "s", &record_schema("Other", &["x"])), 3);
}

#[test]
fn config_endpoints() {
    let registry = RegistryProcess::start(&unique_topic("config"));
    let url = &registry.url;
    let (status, body) = put(&format!("{url}/config"), r#"{"compatibility":"FULL"}"#);
    assert_eq!((status, json(&body)), (200, json!({ "compatibility": "FULL" })));
    assert_eq!(json(&get(&format!("{url}/config")).1), json!({ "compatibilityLevel": "FULL" }));
    let (status, body) = get(&format!("{url}/config/s"));
    assert_eq!((status, json(&body)["error_code"].as_u64()), (404, Some(40408)));
    assert_eq!(json(&get(&format!("{url}/config/s?defaultToGlobal=true")).1), json!({ "compatibilityLevel": "FULL" }));
    put(&format!("{url}/config/s"), r#"{"compatibility":"none"}"#);
    assert_eq!(json(&get(&format!("{url}/config/s")).1), json!({ "compatibilityLevel": "NONE" }));
    assert_eq!(json(&delete(&format!("{url}/config/s")).1), json!({ "compatibilityLevel": "NONE" }));
    assert_eq!(get(&format!("{url}/config/s")).0, 404);
    let (status, body) = put(&format!("{url}/config"), r#"{"compatibility":"SIDEWAYS"}"#);
    assert_eq!((status, json(&body)["error_code"].as_u64()), (422, Some(42203)));
    assert_eq!(json(&put(&format!("{url}/mode"), r#"{"mode":"READWRITE"}"#).1), json!({ "mode": "READWRITE" }));
    let (status, body) = put(&format!("{url}/mode"), r#"{"mode":"IMPORT"}"#);
    assert_eq!((status, json(&body)["error_code"].as_u64()), (422, Some(42204)));
}

#[test]
fn bad_input_gets_confluents_error_codes_and_the_registry_keeps_serving() {
    let registry = RegistryProcess::start(&unique_topic("bad"));
    let url = &registry.url;
    register(url, "s", ORDER_V1);
    let versions = format!("{url}/subjects/s/versions");
    let huge = format!(r#"{{"schema": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let cases: Vec<(&str, (u16, String), u16, u64)> = vec![
        ("malformed JSON", post(&versions, r#"{"schema": "#), 400, 400),
        ("not an object", post(&versions, r#"["schema"]"#), 422, 422),
        ("schema of the wrong JSON type", post(&versions, r#"{"schema": 5}"#), 422, 422),
        ("no schema", post(&versions, r#"{}"#), 422, 42201),
        ("invalid Avro", post(&versions, &register_body(r#"{"type":"record","name":"X"}"#)), 422, 42201),
        ("not JSON Avro", post(&versions, &register_body("Order")), 422, 42201),
        (
            "unsupported type",
            post(&versions, r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#),
            422,
            42201,
        ),
        (
            "references",
            post(&versions, r#"{"schema":"\"string\"","references":[{"name":"a","subject":"b","version":1}]}"#),
            422,
            42201,
        ),
        ("oversized body", post(&versions, &huge), 413, 413),
        ("unknown subject", get(&format!("{url}/subjects/nope/versions")), 404, 40401),
        ("unknown subject lookup", post(&format!("{url}/subjects/nope"), &register_body(ORDER_V1)), 404, 40401),
        ("unknown schema in a subject", post(&format!("{url}/subjects/s"), &register_body(ORDER_V2)), 404, 40403),
        ("unknown version", get(&format!("{url}/subjects/s/versions/9")), 404, 40402),
        ("invalid version", get(&format!("{url}/subjects/s/versions/abc")), 422, 42202),
        ("version zero", get(&format!("{url}/subjects/s/versions/0")), 422, 42202),
        ("unknown id", get(&format!("{url}/schemas/ids/999")), 404, 40403),
        ("id not a number", get(&format!("{url}/schemas/ids/x")), 404, 40403),
        ("unknown route", get(&format!("{url}/nowhere")), 404, 404),
        ("wrong method", delete(&format!("{url}/schemas/ids/1")), 405, 405),
    ];
    for (what, (status, body), want_status, want_code) in cases {
        let error = json(&body);
        assert_eq!(
            (status, error["error_code"].as_u64()),
            (want_status, Some(want_code)),
            "{what}: got {status} {body}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    }
    // Still serving, and nothing bad got in.
    assert_eq!(registry_health(url), 200);
    assert_eq!(register(url, "s", ORDER_V2), 2);
    assert_eq!(json(&get(&versions).1), json!([1, 2]));
}

fn registry_health(url: &str) -> u16 {
    get(&format!("{url}/health")).0
}

#[test]
fn health_and_metrics() {
    let registry = RegistryProcess::start(&unique_topic("metrics"));
    let url = &registry.url;
    let (status, body) = get(&format!("{url}/health"));
    assert_eq!((status, json(&body)["status"].as_str()), (200, Some("UP")));
    register(url, "s", ORDER_V1);
    get(&format!("{url}/schemas/ids/77"));
    let (status, metrics) = get(&format!("{url}/metrics"));
    assert_eq!(status, 200);
    assert!(metrics.contains("kstreams_registry_schemas 1"), "{metrics}");
    assert!(metrics.contains("kstreams_registry_subjects 1"), "{metrics}");
    assert!(
        metrics.contains(
            r#"kstreams_registry_requests_total{method="POST",route="/subjects/{subject}/versions",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"route="/schemas/ids/{id}",status="404"} 1"#), "{metrics}");
}
