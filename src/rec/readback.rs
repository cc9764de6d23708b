//! Reading a tensor back to the CPU: at once (native backends) or asynchronously (required on
//! WebGPU). The ranking is written once, generic over [`ReadBack`]; the synchronous entry points
//! drive it with [`block_on_ready`], which is sound because [`Blocking`]'s futures are ready
//! when created.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use burn::prelude::*;

use crate::error::{Error, Result};

/// How a tensor's values come back to the CPU.
pub trait ReadBack {
    fn read<const D: usize>(&self, t: Tensor<D>) -> impl Future<Output = Result<Vec<f32>>>;
}

/// `into_data`: the values are there when the future is created.
pub struct Blocking;

/// `into_data_async`: the browser's WebGPU backend maps the buffer later.
pub struct Async;

fn backend(e: impl std::fmt::Debug) -> Error {
    Error::Backend(format!("{e:?}"))
}

impl ReadBack for Blocking {
    fn read<const D: usize>(&self, t: Tensor<D>) -> impl Future<Output = Result<Vec<f32>>> {
        std::future::ready(t.into_data().try_to_vec::<f32>().map_err(backend))
    }
}

impl ReadBack for Async {
    async fn read<const D: usize>(&self, t: Tensor<D>) -> Result<Vec<f32>> {
        t.into_data_async()
            .await
            .map_err(backend)?
            .try_to_vec::<f32>()
            .map_err(backend)
    }
}

/// The output of a future that awaits only [`Blocking`] read-backs (ready futures): it
/// completes on its first poll.
pub fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("a blocking read-back future was not ready"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_and_async_read_the_same_values() {
        let device = Device::flex();
        let t = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 3.5, 0.0], [2, 2]),
            &device,
        );
        let a = block_on_ready(Blocking.read(t.clone())).unwrap();
        assert_eq!(a, [1.0, -2.0, 3.5, 0.0]);
        // The CPU backend's asynchronous read-back is ready at once too.
        assert_eq!(block_on_ready(Async.read(t)).unwrap(), a);
    }
}
