//! Secret header values never reach the console, the logs or any result file, even when the
//! target echoes them back in its error bodies.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;

const SECRETS: &[(&str, &str)] = &[
    ("authorization", "Bearer sk-live-4f9a1c77e2"),
    ("cookie", "session=cookie-7d3e55a01b"),
    ("proxy-authorization", "Basic cHJveHk6cHJveHktc2VjcmV0"),
    ("x-api-key", "apikey-91c0ffee42"),
    ("x-auth-token", "tok-0b5e3a9d11"),
    ("x-tenant-id", "tenant-secret-88a1"),
];

/// Serves HTTP/1.1 on 127.0.0.1:0 and answers every request with 401 and a body that echoes
/// every request header, as a misconfigured gateway might. Records the headers it saw.
fn echo_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let record = Arc::clone(&record);
            std::thread::spawn(move || serve_echo(stream, &record));
        }
    });
    (url, seen)
}

fn serve_echo(stream: std::net::TcpStream, record: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push(line);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let echoed = headers.join(" | ");
        record.lock().unwrap().push(echoed.clone());
        let reply = format!("{{\"error\":\"unauthorized: {echoed}\"}}");
        let response = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn secret_headers_never_written() {
    let (url, seen) = echo_server();
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&url).replace(
        "model = \"m\"\n",
        &format!(
            "model = \"m\"\npreflight = false\nsecret_headers = [\"X-Tenant-Id\"]\n\
             [target.headers]\nauthorization = \"{}\"\ncookie = \"{}\"\nx-api-key = \"{}\"\n\
             seldon-model = \"visible-model-header\"\n",
            SECRETS[0].1, SECRETS[1].1, SECRETS[3].1
        ),
    );
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let proxy = format!("proxy-authorization: {}", SECRETS[2].1);
    let token = format!("x-auth-token: {}", SECRETS[4].1);
    let tenant = format!("x-tenant-id: {}", SECRETS[5].1);
    let output = std::process::Command::new(bin())
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(["-vv", "--rate", "20/s", "--duration", "500ms"])
        .arg("--requests-csv")
        .args(["-H", &proxy, "-H", &token, "-H", &tenant])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));

    // The target received every secret, so a leak would have had the chance to happen.
    let received = seen.lock().unwrap().join("\n");
    for (name, value) in SECRETS {
        assert!(received.contains(value), "{name} was not sent: {received}");
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["errors"]["by_kind"]["http_4xx"], 10);
    let top = summary["errors"]["top_bodies"][0]["body"].as_str().unwrap();
    assert!(
        top.contains("[redacted]"),
        "echoed secrets are replaced: {top}"
    );

    assert!(
        out.join("requests.csv").is_file(),
        "the per-request file is among the files checked"
    );
    let mut texts = vec![
        ("stdout".to_string(), output.stdout.clone()),
        ("stderr".to_string(), output.stderr.clone()),
    ];
    for file in files_under(&out) {
        texts.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("run plan"), "-vv logs the plan: {stderr}");
    assert!(
        stderr.contains("visible-model-header"),
        "non-secret headers stay visible"
    );
    assert_no_secret(&texts);

    // compare reads the run folder back and writes its own reports beside the given folder.
    let compared = temp.path().join("compare");
    let compare = inferload(&[
        "compare",
        out.to_str().unwrap(),
        out.to_str().unwrap(),
        "--out",
        compared.to_str().unwrap(),
    ]);
    assert!(
        compared.join("compare.json").is_file(),
        "{}",
        describe(&compare)
    );
    let mut texts = vec![
        ("compare stdout".to_string(), compare.stdout),
        ("compare stderr".to_string(), compare.stderr),
    ];
    for file in files_under(&compared) {
        texts.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    assert_no_secret(&texts);
}

/// Fails when any text contains a secret value, or its first 10 characters as a kept prefix
/// of an error body would cut it.
fn assert_no_secret(texts: &[(String, Vec<u8>)]) {
    for (source, bytes) in texts {
        let text = String::from_utf8_lossy(bytes);
        for (name, value) in SECRETS {
            let credential = value.split_once(' ').map_or(*value, |(_, c)| c);
            assert!(
                !text.contains(&credential[..10]),
                "{source} contains the value of {name}:\n{text}"
            );
        }
    }
}

#[test]
fn secret_headers_never_in_sweep() {
    let (url, seen) = echo_server();
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&url).replace(
        "model = \"m\"\n",
        &format!(
            "model = \"m\"\npreflight = false\nsecret_headers = [\"X-Tenant-Id\"]\n\
             [target.headers]\nauthorization = \"{}\"\ncookie = \"{}\"\nx-api-key = \"{}\"\n",
            SECRETS[0].1, SECRETS[1].1, SECRETS[3].1
        ),
    );
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("sweep");
    let proxy = format!("proxy-authorization: {}", SECRETS[2].1);
    let token = format!("x-auth-token: {}", SECRETS[4].1);
    let tenant = format!("x-tenant-id: {}", SECRETS[5].1);
    let output = std::process::Command::new(bin())
        .arg("sweep")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(["--rates", "20", "--max-error-rate", "1%"])
        .args([
            "--step-warmup",
            "1s",
            "--window",
            "1s",
            "--max-windows",
            "2",
        ])
        .args(["-H", &proxy, "-H", &token, "-H", &tenant])
        .output()
        .unwrap();
    assert!(out.join("summary.json").is_file(), "{}", describe(&output));

    // Every step failed with 401 bodies that echo the headers, so the secrets were sent and
    // came back.
    let received = seen.lock().unwrap().join("\n");
    for (name, value) in SECRETS {
        assert!(received.contains(value), "{name} was not sent: {received}");
    }
    let files = files_under(&out);
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("summary.json") && f.parent() != Some(&out)),
        "the sweep wrote no step folder: {files:?}"
    );
    let mut texts = vec![
        ("stdout".to_string(), output.stdout),
        ("stderr".to_string(), output.stderr),
    ];
    for file in files {
        texts.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    assert_no_secret(&texts);
}
