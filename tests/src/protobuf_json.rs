//! Checks event JSON with protobuf's own JSON mapping (Python's
//! `google.protobuf.json_format`, from the tools deploy/local/tools installs), an
//! implementation this platform did not write.

/// Fails unless each `(protobuf full name, JSON)` pair parses strictly into its message
/// and renders back the same.
pub fn check(cases: &[(String, serde_json::Value)]) {
    let python = std::env::var("HELPDESK_TOOLS_PYTHON").unwrap_or_else(|_| {
        panic!("HELPDESK_TOOLS_PYTHON is not set: run the tests through deploy/local/test")
    });
    let cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, json)| serde_json::json!({ "type": name, "json": json }))
        .collect();
    let dir = std::env::temp_dir().join(format!("hd-json-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let descriptors = dir.join("descriptors.bin");
    let cases_file = dir.join("cases.json");
    std::fs::write(&descriptors, helpdesk_proto::FILE_DESCRIPTOR_SET).expect("write");
    std::fs::write(&cases_file, serde_json::to_vec(&cases).expect("json")).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/check/protobuf_json.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&descriptors)
        .arg(&cases_file)
        .output()
        .expect("run the protobuf check");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "protobuf's json_format disagrees:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
