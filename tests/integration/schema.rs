//! The policy's JSON Schema, checked by an independent validator (the
//! `jsonschema` crate): the shipped policy and every policy the tests start
//! pass it; unknown keys, wrong enums and bad units do not.

use std::sync::OnceLock;

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(&authgate::config::schema())
            .expect("the schema is a valid schema")
    })
}

/// The schema's complaints about a YAML policy (empty when it passes).
pub fn schema_errors(policy_yaml: &str) -> Vec<String> {
    let value: serde_json::Value = serde_yaml::from_str(policy_yaml).expect("YAML");
    validator()
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn the_committed_schema_is_what_authgate_schema_prints() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../gateway.schema.json"))
            .expect("gateway.schema.json is JSON");
    assert_eq!(
        committed,
        authgate::config::schema(),
        "gateway.schema.json is stale: run `cargo run -- schema > gateway.schema.json`"
    );
    let out = std::process::Command::new(crate::harness::binary())
        .arg("schema")
        .output()
        .expect("run schema");
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed, committed);
    assert_eq!(
        printed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn the_shipped_policy_passes_and_broken_ones_do_not() {
    let shipped = include_str!("../../gateway.yaml");
    assert_eq!(schema_errors(shipped), Vec::<String>::new());
    let broken = [
        ("an unknown key", "upstream: {url: echo, timout: 5s}\nroutes: [{path: /x}]\nserver: {tls: {cert: c, key: k}}\n"),
        ("a wrong enum", "upstream: {url: echo}\nroutes: [{path: /x}]\nserver: {tls: {cert: c, key: k}}\nrate_limits: {backend: mongo}\n"),
        ("a bad duration", "upstream: {url: echo}\nroutes: [{path: /x}]\nserver: {idle_timeout: 10 parsecs, tls: {cert: c, key: k}}\n"),
        ("a bad credential kind", "upstream: {url: echo}\nroutes: [{path: /x, auth: [password]}]\nserver: {tls: {cert: c, key: k}}\n"),
        ("no routes", "upstream: {url: echo}\nserver: {tls: {cert: c, key: k}}\n"),
        ("an unknown algorithm", "upstream: {url: echo}\nroutes: [{path: /x}]\nserver: {tls: {cert: c, key: k}}\njwt: [{issuer: i, audiences: [a], algorithms: [none], jwks_file: j}]\n"),
    ];
    for (what, policy) in broken {
        assert!(
            !schema_errors(policy).is_empty(),
            "{what} passed the schema"
        );
        // And `check` refuses each too: the schema never allows what check does not.
        let loaded = authgate::config::load_str(policy, std::path::Path::new("p.yaml"), &|_| None);
        assert!(loaded.is_err(), "{what} passed check");
    }
}
