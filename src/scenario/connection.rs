//! Connection settings of a run: the HTTP version of REST requests (`[target.http2]`, `--http-version`)
//! and TLS (`[target.tls]`, `--ca-cert`, `--client-cert`, `--client-key`, `--insecure`).
//!
//! An `https://` URL always uses TLS with verified certificates. For REST over `https://`
//! without an explicit HTTP version, the run offers `h2` and `http/1.1` by ALPN once before
//! the load and uses what the server chooses. TLS files are read and checked here, so a bad
//! PEM file stops the run before any connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::plan::{TargetPlan, Transport};
use super::{Scenario, ScenarioError};
use crate::transport::tls::{self, TlsOptions};

/// `[target.tls]`: TLS settings for `https://` targets. Paths are relative to the scenario.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM file of the CA certificates that verify the server, in place of the Mozilla roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate chain, for servers that require one (mTLS).
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate (default false); a warning is printed.
    pub insecure: Option<bool>,
}

/// `[target.http2]`: settings of REST over HTTP/2.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http2Section {
    /// Concurrent streams opened on each HTTP/2 connection (default 100).
    pub streams_per_connection: Option<u32>,
}

/// HTTP version of REST requests, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpVersion {
    #[value(name = "1.1")]
    Http1,
    #[value(name = "2")]
    Http2,
}

/// Command-line options of the connection, shared by `run`, `sweep` and `bench`.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConnectionOverrides {
    /// HTTP version of REST requests: 1.1, or 2 (h2c with prior knowledge for http:// URLs,
    /// h2 for https:// URLs). Default: 1.1 for http://; for https:// the server chooses by
    /// ALPN between h2 and http/1.1.
    #[arg(long, value_enum)]
    pub http_version: Option<HttpVersion>,

    /// Same as --http-version 2.
    #[arg(long, alias = "http2-prior-knowledge", conflicts_with = "http_version")]
    pub http2: bool,

    /// PEM file of the CA certificates that verify the server (replaces the built-in roots).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// PEM file of a client certificate chain, for servers that require one (mTLS).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// PEM file of the private key of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Accept any server certificate without verification (prints a warning).
    #[arg(short = 'k', long)]
    pub insecure: bool,
}

impl ConnectionOverrides {
    fn http_version(&self) -> Option<HttpVersion> {
        if self.http2 {
            Some(HttpVersion::Http2)
        } else {
            self.http_version
        }
    }
}

/// TLS of a run: the options and the client configuration built from them.
#[derive(Debug, Clone)]
pub struct TlsPlan {
    pub options: TlsOptions,
    /// Verified configuration without ALPN protocols; each connection adds its own.
    pub config: Arc<rustls::ClientConfig>,
}

/// Settings of REST over HTTP/2.
#[derive(Debug, Clone)]
pub struct Http2Plan {
    pub streams_per_connection: u32,
}

/// Fills the target's HTTP version, HTTP/2 settings and TLS from the scenario and flags.
pub fn apply(
    scenario: &Scenario,
    overrides: &ConnectionOverrides,
    base_dir: &Path,
    target: &mut TargetPlan,
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    let https = target
        .base
        .as_ref()
        .is_some_and(|base| base.scheme_str() == Some("https"));
    let explicit = scenario.target.transport.is_some();
    if let Some(version) = overrides.http_version() {
        if target.transport == Transport::Grpc {
            return Err(invalid(
                "--http-version",
                "applies to REST, but target.transport is grpc (always HTTP/2); remove the flag"
                    .into(),
            ));
        }
        target.transport = match version {
            HttpVersion::Http1 => Transport::Http1,
            HttpVersion::Http2 => Transport::Http2,
        };
    }
    target.negotiate_http = https
        && target.transport != Transport::Grpc
        && !explicit
        && overrides.http_version().is_none();

    let streams = scenario
        .target
        .http2
        .as_ref()
        .and_then(|s| s.streams_per_connection)
        .unwrap_or(100);
    if streams == 0 {
        return Err(invalid(
            "target.http2.streams_per_connection",
            "= 0; use 1 or more (default 100)".into(),
        ));
    }
    target.http2 = Http2Plan {
        streams_per_connection: streams,
    };

    let section = scenario.target.tls.as_ref();
    let from_scenario = |get: fn(&TlsSection) -> Option<&PathBuf>| {
        section.and_then(get).map(|path| base_dir.join(path))
    };
    let options = TlsOptions {
        ca_cert: overrides
            .ca_cert
            .clone()
            .or_else(|| from_scenario(|s| s.ca_cert.as_ref())),
        client_cert: overrides
            .client_cert
            .clone()
            .or_else(|| from_scenario(|s| s.client_cert.as_ref())),
        client_key: overrides
            .client_key
            .clone()
            .or_else(|| from_scenario(|s| s.client_key.as_ref())),
        insecure: overrides.insecure || section.and_then(|s| s.insecure).unwrap_or(false),
    };
    if options.client_cert.is_some() != options.client_key.is_some() {
        return Err(invalid(
            "target.tls",
            "sets only one of client_cert and client_key; a client certificate needs both \
             (--client-cert FILE --client-key FILE)"
                .into(),
        ));
    }
    if !https {
        if options.is_set() {
            let url = target
                .base
                .as_ref()
                .map_or("embedded".to_string(), |b| b.to_string());
            return Err(invalid(
                "target.tls",
                format!(
                    "(or --ca-cert, --client-cert, --client-key, --insecure) is set, but \
                     target.url {url:?} does not use TLS; write the URL with https:// or remove \
                     the TLS options"
                ),
            ));
        }
        return Ok(());
    }
    let key_for = |flag: bool, key: &'static str, name: &'static str| {
        if flag {
            name
        } else {
            key
        }
    };
    let config = tls::client_config(&options).map_err(|error| {
        let key = match &error {
            tls::TlsError::Read { path, .. }
            | tls::TlsError::Empty { path, .. }
            | tls::TlsError::Invalid { path, .. }
            | tls::TlsError::KeyMismatch { path, .. } => {
                if Some(path) == options.ca_cert.as_ref() {
                    key_for(
                        overrides.ca_cert.is_some(),
                        "target.tls.ca_cert",
                        "--ca-cert",
                    )
                } else if Some(path) == options.client_cert.as_ref() {
                    key_for(
                        overrides.client_cert.is_some(),
                        "target.tls.client_cert",
                        "--client-cert",
                    )
                } else {
                    key_for(
                        overrides.client_key.is_some(),
                        "target.tls.client_key",
                        "--client-key",
                    )
                }
            }
        };
        invalid(key, error.to_string())
    })?;
    target.tls = Some(TlsPlan { options, config });
    Ok(())
}
