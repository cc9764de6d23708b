//! `ranklet worker`: this process's device, served to a data-parallel leader.

use std::net::TcpListener;

use clap::Args;
use ranklet::{Error, Result};

use super::DeviceArg;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Address to listen on, host:port (port 0: any free port, printed on start). The
    /// connection is unencrypted WebSocket: listen on loopback or a trusted network only.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: String,
    /// The device this worker lends.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

pub fn run(args: WorkerArgs) -> Result<()> {
    let listener = TcpListener::bind(&args.listen).map_err(|e| {
        Error::bad_input(
            "--listen",
            format!("cannot listen on {} ({e})", args.listen),
        )
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Backend(format!("the listening socket has no address ({e})")))?;
    let device = args.device.init()?;
    // One line on stdout, which launch scripts and tests read for the port; then the server.
    let kind = format!("{:?}", args.device).to_lowercase();
    super::out!("worker: serving {kind} on ws://{address}")?;
    eprintln!("worker: a leader uses it with --devices …,ws://{address}; Ctrl+C stops it");
    ranklet::jobs::worker_step::serve(device, listener, &[ranklet::train::parallel::WORKER_STEP])
}
