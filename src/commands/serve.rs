//! `inferload serve`: the embedded reference target as its own process.

use anyhow::Context;

use super::{CommandError, Outcome};
use crate::cli::ServeArgs;

pub async fn serve(args: ServeArgs) -> Result<Outcome, CommandError> {
    args.options.validate().map_err(CommandError::Usage)?;
    let tls = args
        .tls
        .acceptor()
        .map_err(|e| CommandError::Usage(format!("invalid TLS option: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let handle = crate::serve::start_with_tls(args.addr, args.grpc_addr, args.options, tls)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (or --grpc-addr); choose another address",
                args.addr
            )
        })?;
    println!("inferload serve listening on {scheme}://{}", handle.addr);
    if let Some(grpc_addr) = handle.grpc_addr {
        println!("inferload serve gRPC also on {scheme}://{grpc_addr}");
    }
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    handle.stop();
    Ok(Outcome::Passed)
}
