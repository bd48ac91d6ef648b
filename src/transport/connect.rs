//! Opening connections to the target: TCP with the connect timeout, and the error kinds of a
//! failed connect.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::connect_error_kind;
use crate::stats::ErrorKind;

/// Opens connections to one resolved address.
#[derive(Clone)]
pub struct Connector {
    pub addr: SocketAddr,
    pub timeout: Duration,
}

/// A connected stream, ready for hyper.
pub type Stream = TokioIo<TcpStream>;

impl Connector {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Connector {
        Connector { addr, timeout }
    }

    /// Whether connections use TLS (and so the `https` scheme).
    pub fn is_tls(&self) -> bool {
        false
    }

    /// Connects with TCP_NODELAY set. `alpn` lists the protocols offered over TLS.
    pub async fn connect(&self, alpn: &[&[u8]]) -> Result<Stream, ErrorKind> {
        let _ = alpn;
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ErrorKind::ConnectTimeout)?
            .map_err(|e| connect_error_kind(&e))?;
        let _ = stream.set_nodelay(true);
        Ok(TokioIo::new(stream))
    }
}
