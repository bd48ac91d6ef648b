//! TLS and HTTP/2 against `inferload serve`: certificate verification with a private CA,
//! `--insecure`, client certificates (mTLS), the TLS server name from the Host override,
//! ALPN choosing h2, h2c with prior knowledge, gRPC over TLS, and bad TLS files.
//!
//! Certificates are minted with rcgen in a temporary folder for each test. The server's
//! `x-inferload-http-version` response header, used as the route header, shows which HTTP
//! version each request arrived with.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// PEM files of a test CA, a server certificate signed by it, and a client certificate.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// Mints a CA, a server certificate for `server_names` and a client certificate in `dir`.
fn mint(dir: &Path, server_names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "inferload test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let names: Vec<String> = server_names.iter().map(|n| n.to_string()).collect();
    let server_cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "inferload load generator");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        server_cert: write("server.pem", server_cert.pem()),
        server_key: write("server-key.pem", server_key.serialize_pem()),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
    }
}

/// Starts `inferload serve` with TLS from `pki`, plus `extra` arguments.
fn serve_tls(pki: &Pki, extra: &[&str]) -> Server {
    let mut args = vec![
        "--tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--tls-key",
        pki.server_key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    serve(&args)
}

/// A 100 req/s, 1 s scenario whose route header is the server's HTTP version header.
fn version_scenario(dir: &Path, url: &str, target_extra: &str) -> PathBuf {
    scenario(
        dir,
        &format!(
            r#"
[target]
url = "{url}"
model = "m"
{target_extra}

[payload]
file = "payloads/quickstart.json"

[routes]
header = "x-inferload-http-version"

[load]
rate = "100/s"
duration = "1s"
connections = 2
"#
        ),
    )
}

fn u64_at(summary: &serde_json::Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing in {summary}"))
}

fn str_at<'a>(summary: &'a serde_json::Value, pointer: &str) -> &'a str {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {summary}"))
}

/// Returns the route labels of a summary with their counts.
fn routes(summary: &serde_json::Value) -> Vec<(String, u64)> {
    let mut routes: Vec<_> = summary["routes"]
        .as_object()
        .unwrap_or_else(|| panic!("no routes in {summary}"))
        .iter()
        .map(|(label, route)| (label.clone(), route["count"].as_u64().unwrap()))
        .collect();
    routes.sort();
    routes
}

/// Returns the error kinds of a summary with their counts.
fn error_kinds(summary: &serde_json::Value) -> Vec<(String, u64)> {
    let mut kinds: Vec<_> = summary["errors"]["by_kind"]
        .as_object()
        .unwrap_or_else(|| panic!("no errors.by_kind in {summary}"))
        .iter()
        .map(|(kind, count)| (kind.clone(), count.as_u64().unwrap()))
        .collect();
    kinds.sort();
    kinds
}

/// Returns the text of every kept error body.
fn error_bodies(summary: &serde_json::Value) -> String {
    summary["errors"]["top_bodies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["body"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn verified_run_chooses_h2_by_alpn() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["localhost", "127.0.0.1"]);
    let server = serve_tls(&pki, &[]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let path = version_scenario(temp.path(), &server.url, "");
    let ca = pki.ca.to_str().unwrap();
    let (output, summary) = run(&path, &temp.path().join("out"), &["--ca-cert", ca]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/sent"), 100, "{summary}");
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");
    assert_eq!(u64_at(&summary, "/requests/errors"), 0, "{summary}");
    assert_eq!(str_at(&summary, "/target/transport"), "http2");
    assert_eq!(routes(&summary), [("HTTP/2.0".to_string(), 100)]);
    assert_eq!(u64_at(&summary, "/connections_opened"), 2, "{summary}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("--insecure"), "{stderr}");
}

#[test]
fn explicit_http1_over_tls() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let server = serve_tls(&pki, &[]);
    let ca = pki.ca.display();
    let tls = format!("[target.tls]\nca_cert = \"{ca}\"");
    let path = version_scenario(
        temp.path(),
        &server.url,
        &format!("transport = \"http1\"\n{tls}"),
    );
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");
    assert_eq!(str_at(&summary, "/target/transport"), "http1");
    assert_eq!(routes(&summary), [("HTTP/1.1".to_string(), 100)]);
}

#[test]
fn unknown_issuer_counts_as_tls() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let server = serve_tls(&pki, &[]);
    let path = version_scenario(temp.path(), &server.url, "preflight = false");
    let (output, summary) = run(&path, &temp.path().join("out"), &["--http-version", "2"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 0, "{summary}");
    assert_eq!(error_kinds(&summary), [("tls".to_string(), 100)]);
    let bodies = error_bodies(&summary);
    assert!(bodies.contains("UnknownIssuer"), "{bodies}");
}

#[test]
fn unknown_issuer_stops_preflight() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let server = serve_tls(&pki, &[]);
    let path = version_scenario(temp.path(), &server.url, "");
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(summary.is_none());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(stderr.contains("--ca-cert FILE"), "{stderr}");
}

#[test]
fn insecure_accepts_and_warns_once() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let server = serve_tls(&pki, &[]);
    let path = version_scenario(temp.path(), &server.url, "");
    let (output, summary) = run(&path, &temp.path().join("out"), &["--insecure"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("warning: --insecure").count(), 1, "{stderr}");
}

#[test]
fn mtls_needs_client_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let ca = pki.ca.to_str().unwrap();
    let server = serve_tls(&pki, &["--client-ca", ca]);
    for version in ["1.1", "2"] {
        let dir = temp.path().join(format!("without-{version}"));
        let path = version_scenario(&dir, &server.url, "preflight = false");
        let args = ["--ca-cert", ca, "--http-version", version];
        let (output, summary) = run(&path, &dir.join("out"), &args);
        assert!(output.status.success(), "{}", describe(&output));
        let summary = summary.unwrap();
        assert_eq!(u64_at(&summary, "/requests/ok"), 0, "{summary}");
        assert_eq!(error_kinds(&summary), [("tls".to_string(), 100)]);
        let bodies = error_bodies(&summary);
        assert!(
            bodies.contains("CertificateRequired") || bodies.contains("client certificate"),
            "{bodies}"
        );
    }

    let dir = temp.path().join("with");
    let path = version_scenario(&dir, &server.url, "");
    let args = [
        "--ca-cert",
        ca,
        "--client-cert",
        pki.client_cert.to_str().unwrap(),
        "--client-key",
        pki.client_key.to_str().unwrap(),
    ];
    let (output, summary) = run(&path, &dir.join("out"), &args);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");
    assert_eq!(u64_at(&summary, "/requests/errors"), 0, "{summary}");
}

#[test]
fn host_override_sets_server_name() {
    let temp = tempfile::tempdir().unwrap();
    // The certificate names only the override, not the address in the URL.
    let pki = mint(temp.path(), &["ml-api.test"]);
    let server = serve_tls(&pki, &[]);
    let ca = pki.ca.to_str().unwrap();

    let dir = temp.path().join("override");
    let path = version_scenario(&dir, &server.url, "host = \"ml-api.test\"");
    let (output, summary) = run(&path, &dir.join("out"), &["--ca-cert", ca]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");

    let dir = temp.path().join("url-host");
    let path = version_scenario(&dir, &server.url, "preflight = false");
    let (output, summary) = run(&path, &dir.join("out"), &["--ca-cert", ca]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(error_kinds(&summary), [("tls".to_string(), 100)]);
    let bodies = error_bodies(&summary);
    assert!(bodies.contains("not valid for name"), "{bodies}");
    assert!(bodies.contains("ml-api.test"), "{bodies}");
}

#[test]
fn h2c_prior_knowledge() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    for (args, transport, version) in [
        (&[][..], "http1", "HTTP/1.1"),
        (&["--http2"][..], "http2", "HTTP/2.0"),
        (&["--http-version", "2"][..], "http2", "HTTP/2.0"),
    ] {
        let dir = temp.path().join(transport).join(args.len().to_string());
        let path = version_scenario(&dir, &server.url, "");
        let (output, summary) = run(&path, &dir.join("out"), args);
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        let summary = summary.unwrap();
        assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{args:?}: {summary}");
        assert_eq!(str_at(&summary, "/target/transport"), transport, "{args:?}");
        assert_eq!(routes(&summary), [(version.to_string(), 100)], "{args:?}");
    }
}

#[test]
fn h2c_many_streams_per_connection() {
    // 200 requests in flight at once over one connection: each waits 200 ms at the server.
    let server = serve(&["--latency", "fixed:200ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        &format!(
            r#"
[target]
url = "{}"
model = "m"
transport = "http2"

[payload]
file = "payloads/quickstart.json"

[load]
concurrency = 200
duration = "1s"
connections = 1
"#,
            server.url
        ),
    );
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/errors"), 0, "{summary}");
    assert_eq!(u64_at(&summary, "/connections_opened"), 1, "{summary}");
    // One stream at a time would complete at most 5 requests in 1 s; 200 concurrent streams
    // complete about 200 every 200 ms (1000 measured).
    let ok = u64_at(&summary, "/requests/ok");
    assert!(ok >= 400, "{ok} requests in 1 s: {summary}");
}

#[test]
fn grpc_over_tls_on_grpc_listener() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&pki.server_cert)
        .arg("--tls-key")
        .arg(&pki.server_key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        reader.read_line(line).unwrap();
    }
    let grpc_url = lines[1].trim().rsplit(' ').next().unwrap().to_string();
    let path = version_scenario(temp.path(), &grpc_url, "transport = \"grpc\"");
    let ca = pki.ca.to_str().unwrap();
    let (verified, verified_summary) = run(&path, &temp.path().join("ok"), &["--ca-cert", ca]);
    let (unverified, _) = run(&path, &temp.path().join("no-ca"), &[]);
    let _ = child.kill();
    let _ = child.wait();

    assert!(grpc_url.starts_with("https://127.0.0.1:"), "{lines:?}");
    assert!(verified.status.success(), "{}", describe(&verified));
    let summary = verified_summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");
    assert_eq!(str_at(&summary, "/target/transport"), "grpc");
    assert_eq!(routes(&summary), [("HTTP/2.0".to_string(), 100)]);
    assert_eq!(
        unverified.status.code(),
        Some(1),
        "{}",
        describe(&unverified)
    );
    let stderr = String::from_utf8_lossy(&unverified.stderr);
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}

#[test]
fn bad_tls_files_are_rejected() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("empty.pem"), "no PEM here\n").unwrap();
    let cases = [
        (
            "[target.tls]\nca_cert = \"missing.pem\"",
            &[][..],
            vec!["target.tls.ca_cert", "missing.pem", "check the path"],
        ),
        (
            "[target.tls]\nca_cert = \"empty.pem\"",
            &[][..],
            vec!["target.tls.ca_cert", "empty.pem", "BEGIN CERTIFICATE"],
        ),
        (
            "",
            &["--client-cert", "empty.pem", "--client-key", "empty.pem"][..],
            vec!["--client-cert", "empty.pem"],
        ),
        (
            "[target.tls]\nclient_cert = \"empty.pem\"",
            &[][..],
            vec!["client_key", "needs both"],
        ),
        (
            "[target.tls]\ncacert = \"x.pem\"",
            &[][..],
            vec!["unknown field", "cacert"],
        ),
    ];
    for (index, (tls, args, expected)) in cases.iter().enumerate() {
        let dir = temp.path().join(index.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(temp.path().join("empty.pem"), dir.join("empty.pem")).unwrap();
        let path = version_scenario(&dir, "https://127.0.0.1:9", tls);
        let mut full_args = Vec::new();
        for arg in args.iter() {
            if arg.ends_with(".pem") {
                full_args.push(dir.join(arg).display().to_string());
            } else {
                full_args.push(arg.to_string());
            }
        }
        let full_args: Vec<&str> = full_args.iter().map(String::as_str).collect();
        let (output, _) = run(&path, &dir.join("out"), &full_args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{tls}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        for text in expected {
            assert!(
                stderr.contains(text),
                "{tls}: expected {text:?} in {stderr}"
            );
        }
    }
}

#[test]
fn tls_options_need_https_url() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let path = version_scenario(temp.path(), &server.url, "");
    let (output, _) = run(&path, &temp.path().join("out"), &["--insecure"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("https://"), "{stderr}");
    assert!(stderr.contains("does not use TLS"), "{stderr}");
}

#[test]
fn serve_rejects_bad_tls_key() {
    let temp = tempfile::tempdir().unwrap();
    let pki = mint(temp.path(), &["127.0.0.1"]);
    let output = inferload(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--tls-key",
        pki.server_cert.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.pem"), "{stderr}");
    assert!(stderr.contains("private key"), "{stderr}");
}
