//! A data-parallel replica's whole step run on its `ranklet worker`, as a custom operation of
//! burn's remote backend.
//!
//! Driving a worker's shard operation by operation from the leader (burn's remote backend as it
//! is) keeps the replica's autodiff graph on the leader: every forward and backward operation
//! crosses the connection, and the leader's core spends about as long driving the worker's half
//! as it would computing it (`reports/parallel.md`). Here the leader instead registers one custom
//! operation per step ([`WorkerStep::id`]) whose inputs are the step's request (a job-defined byte
//! string: the shard's rows, the objective, the model's shape), the tensors the replica keeps for
//! the whole run (the catalogue's text vectors) and the model's parameters; the worker rebuilds
//! the model on its own autodiff device, runs the shard's forward and backward passes there, and
//! answers with the loss and one gradient per parameter. The leader only uploads parameters and
//! downloads gradients, which is the exchange a data-parallel step needs anyway.
//!
//! The job supplies the worker's side as a plain function ([`WorkerStep::run`]); this module is
//! only the transport, shared by every job that has one.

use burn::backend::ir::BackendIr;
use burn::backend::ir::TensorIr;
use burn::backend::{
    BackendTypes, Cube, DispatchDevice, DispatchKindConversion, DispatchTensor, Flex, Remote,
};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::remote::CustomOpClient;
use burn::server::{CustomOpIr, HandleContainer};
use burn::tensor::DType;

use crate::error::{Error, Result};

/// What a worker computes for one step: given the request, the replica's resident tensors (on
/// `device`, without autodiff) and the model's parameters (every float parameter's values in the model's visiting order, one
/// after the other), the shard's loss and each parameter's gradient (`None`: the parameter got
/// none, e.g. it is frozen or unused by the shard's objective). `device` is the one the worker
/// serves (without autodiff). An `Err` is reported to the leader, which stops the run naming the
/// worker; its text goes to the worker's log.
pub type WorkerStepFn =
    fn(&[u8], Vec<Tensor<2>>, Vec<f32>, &Device) -> std::result::Result<StepAnswer, String>;

/// A worker's answer to one step.
pub struct StepAnswer {
    pub loss: f64,
    /// Per float parameter, in visiting order.
    pub grads: Vec<ParamGrad>,
}

/// A parameter's gradient as a worker's step returns it: its number of values (so that the
/// answer keeps its place when it has none) and the gradient, if it got one.
#[derive(Debug, Clone)]
pub struct ParamGrad {
    pub size: usize,
    pub grad: Option<TensorData>,
}

/// A step a worker can run: its operation id (the leader and the worker must agree on it, and
/// on the request's format; both are in the same binary) and the worker's side of it.
#[derive(Clone, Copy)]
pub struct WorkerStep {
    pub id: &'static str,
    pub run: WorkerStepFn,
}

/// Whether `device` is a `ranklet worker` (a device of burn's remote backend).
pub fn is_worker(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Remote(_)
    )
}

/// The answer's first value when the worker's step failed.
const FAILED: f32 = 1.0;

/// Runs `step` for `model` on the worker `device` (a remote device, autodiff or not) and returns
/// the shard's loss and gradients, moved to `main` (the leader's autodiff device) and keyed by
/// `model`'s parameter ids, as a local replica's would be. `resident`: tensors already on
/// `device` (kept there for the run); `request`: the job's encoding of the rest.
///
/// The parameters travel as one tensor and the answer comes back as one (its status, the loss,
/// which parameters have a gradient, then every gradient): one upload and one read per step,
/// whatever the number of parameters.
pub fn run_on_worker<M: Module>(
    step: &WorkerStep,
    model: &M,
    device: &Device,
    main: &Device,
    resident: &[Tensor<2>],
    request: &[u8],
) -> std::result::Result<(f64, GradientsParams), String> {
    let remote = device.clone().inner();
    let DispatchDevice::Remote(remote_device) = remote.as_dispatch() else {
        return Err(format!("{remote:?} is not a worker's device"));
    };
    let client = CustomOpClient::new(remote_device);
    let mut inputs = vec![int_ir(request_tensor(request, &remote))?];
    for tensor in resident {
        inputs.push(float_ir(tensor.clone().inner().to_device(&remote))?);
    }
    let mut params = ParamValues::default();
    model.visit(&mut params);
    let total = params.values.len();
    let n = params.specs.len();
    inputs.push(float_ir(Tensor::<1>::from_data(
        TensorData::new(params.values, [total]),
        &remote,
    ))?);
    let answer_len = 2 + n + total;
    let output = TensorIr::uninit(
        client.create_empty_handle(),
        [answer_len].into(),
        DType::F32,
    );
    let op = CustomOpIr::new(step.id, &inputs, &[output]);
    let answer = client
        .register(op)
        .into_iter()
        .next()
        .ok_or("the worker's step gave no answer")?;
    // The read is where a dead worker shows (as an error from burn's remote client).
    let answer: Vec<f32> = Tensor::<1>::from_primitive::<Remote>(answer)
        .try_into_data()
        .map_err(|e| format!("{e:?}"))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    if answer[0] == FAILED {
        return Err(
            "its step failed (the worker's log says why; leader and worker must be the same \
             ranklet build)"
                .into(),
        );
    }
    let sizes: Vec<usize> = params
        .specs
        .iter()
        .map(|spec| spec.dims.iter().product())
        .collect();
    let (loss, values) = unpack_answer(&answer, &sizes)?;
    let mut grads = GradientsParams::new();
    for (spec, values) in params.specs.iter().zip(values) {
        if let Some(values) = values {
            register_grad(&mut grads, spec, values, main)?;
        }
    }
    Ok((loss, grads))
}

/// Each parameter's gradient values in an answer (`None`: it got none).
type GradValues<'a> = Vec<Option<&'a [f32]>>;

/// The loss and each parameter's gradient values from an answer packed by [`pack_answer`] for
/// parameters of `sizes` values.
fn unpack_answer<'a>(
    answer: &'a [f32],
    sizes: &[usize],
) -> std::result::Result<(f64, GradValues<'a>), String> {
    let n = sizes.len();
    let total: usize = sizes.iter().sum();
    if answer.len() != 2 + n + total {
        return Err(format!(
            "its answer has {} values, not {}",
            answer.len(),
            2 + n + total
        ));
    }
    let (present, mut values) = (&answer[2..2 + n], &answer[2 + n..]);
    let mut grads = Vec::with_capacity(n);
    for (&size, &present) in sizes.iter().zip(present) {
        let (grad, rest) = values.split_at(size);
        values = rest;
        grads.push((present == 1.0).then_some(grad));
    }
    Ok((f64::from(answer[1]), grads))
}

/// Serves `device` to data-parallel leaders on `listener` (burn's remote server over WebSocket)
/// until the process is stopped, with `steps` run whole on this worker when a leader asks.
pub fn serve(device: Device, listener: std::net::TcpListener, steps: &[WorkerStep]) -> Result<()> {
    use burn::server::{RemoteServer, WebSocketTransport};
    let mut server = RemoteServer::new([device.clone()]);
    // A custom operation is registered for the served device's backend: burn refuses others.
    let cube = !matches!(device.as_dispatch(), DispatchDevice::Flex(_));
    for step in steps {
        let (step, device) = (*step, device.clone());
        // Told once, so that the log shows the leader's steps run here.
        let told = std::sync::atomic::AtomicBool::new(false);
        let tell = move || {
            if !told.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("worker: running {} steps for a leader", step.id);
            }
        };
        server = if cube {
            server.with_custom_op::<Cube, _>(step.id, move |handles, ir, own| {
                tell();
                answer::<Cube>(step, handles, ir, own, &device)
            })
        } else {
            server.with_custom_op::<Flex, _>(step.id, move |handles, ir, own| {
                tell();
                answer::<Flex>(step, handles, ir, own, &device)
            })
        };
    }
    server
        .serve(WebSocketTransport::from_listener(listener))
        .map_err(|e| Error::Backend(format!("the worker stopped: {e}")))
}

/// The worker's side of one step on backend `B` (its served device's): read the inputs, run the
/// job's function on `device` (a panic in it is a failed step, not a dead worker), register the
/// answer.
fn answer<B>(
    step: WorkerStep,
    handles: &mut HandleContainer<<B as BackendIr>::Handle>,
    ir: &CustomOpIr,
    own: &<B as BackendTypes>::Device,
    device: &Device,
) where
    B: BackendIr,
    DispatchTensor: DispatchKindConversion<B>,
{
    let answer_len = ir.outputs[0].shape.num_elements();
    let run = step.run;
    let answered = (|| -> std::result::Result<StepAnswer, String> {
        let [request, resident @ .., params] = ir.inputs.as_slice() else {
            return Err("a step without its request or parameters".into());
        };
        // Read through burn's tensor API (a read does not check the rank given here).
        let request = Tensor::<1, Int>::from_primitive::<B>(handles.get_int_tensor::<B>(request))
            .try_into_data()
            .map_err(|e| format!("{e:?}"))?;
        let request = request_bytes(request.iter::<i64>());
        // The resident tensors are handed over as they are on this device, not read back:
        // they are the run's largest inputs (the catalogue's text vectors).
        let tensors = resident
            .iter()
            .map(|input| Tensor::<2>::from_primitive::<B>(handles.get_float_tensor::<B>(input)))
            .collect();
        let params = Tensor::<1>::from_primitive::<B>(handles.get_float_tensor::<B>(params))
            .try_into_data()
            .map_err(|e| format!("{e:?}"))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(&request, tensors, params, device)
        }))
        .unwrap_or_else(|panic| Err(crate::jobs::parallel::panic_text(&*panic)))
    })();
    let mut out = vec![0.0f32; answer_len];
    if let Err(why) = answered.and_then(|answer| pack_answer(answer, &mut out)) {
        eprintln!("worker: a step of {} failed: {why}", step.id);
        out.fill(0.0);
        out[0] = FAILED;
    }
    handles.register_float_tensor::<B>(
        &ir.outputs[0].id,
        B::float_from_data(TensorData::new(out, [answer_len]), own),
    );
}

/// Writes `answer` into `out` as [`run_on_worker`] reads it: status 0, the loss, a presence flag
/// per gradient, then the gradients (zeros for an absent one).
fn pack_answer(answer: StepAnswer, out: &mut [f32]) -> std::result::Result<(), String> {
    let n = answer.grads.len();
    let total: usize = answer.grads.iter().map(|g| g.size).sum();
    if out.len() != 2 + n + total {
        return Err(format!(
            "{n} parameters of {total} values do not fit the leader's answer of {}",
            out.len()
        ));
    }
    out[1] = answer.loss as f32;
    let mut at = 2 + n;
    for (k, ParamGrad { size, grad }) in answer.grads.into_iter().enumerate() {
        if let Some(grad) = grad {
            let values = grad
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            if values.len() != size {
                return Err(format!(
                    "parameter {k}: a gradient of {} values for {size}",
                    values.len()
                ));
            }
            out[2 + k] = 1.0;
            out[at..at + size].copy_from_slice(&values);
        }
        at += size;
    }
    Ok(())
}
/// The request as an int tensor on `device`: its length in bytes, then its bytes four to a
/// word (the last zero-padded).
fn request_tensor(request: &[u8], device: &Device) -> Tensor<1, Int> {
    let mut words = vec![request.len() as i32];
    words.extend(request.chunks(4).map(|c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        i32::from_le_bytes(w)
    }));
    let n = words.len();
    Tensor::from_data(TensorData::new(words, [n]), device)
}

/// [`request_tensor`]'s bytes back from its words.
fn request_bytes(words: impl Iterator<Item = i64>) -> Vec<u8> {
    let mut words = words.map(|w| w as i32);
    let len = words.next().unwrap_or(0).max(0) as usize;
    let mut bytes: Vec<u8> = words.flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(len);
    bytes
}

/// A remote float tensor as a custom operation's input.
fn float_ir<const D: usize>(tensor: Tensor<D>) -> std::result::Result<TensorIr, String> {
    tensor
        .try_into_primitive::<Remote>()
        .map(|t| t.into_ir())
        .map_err(|e| format!("not a worker's tensor: {e:?}"))
}

/// A remote int tensor as a custom operation's input.
fn int_ir(tensor: Tensor<1, Int>) -> std::result::Result<TensorIr, String> {
    tensor
        .try_into_primitive::<Remote>()
        .map(|t| t.into_ir())
        .map_err(|e| format!("not a worker's tensor: {e:?}"))
}

/// A parameter as the step sends it: its id on the leader and its shape.
struct ParamSpec {
    id: ParamId,
    dims: Vec<usize>,
}

/// Every float parameter's values, one after the other in the model's visiting order.
#[derive(Default)]
struct ParamValues {
    specs: Vec<ParamSpec>,
    values: Vec<f32>,
}

impl ModuleVisitor for ParamValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        self.specs.push(ParamSpec {
            id: param.id,
            dims: data.shape().as_slice().to_vec(),
        });
        match data.as_slice::<f32>() {
            Ok(values) => self.values.extend_from_slice(values),
            Err(_) => self.values.extend(data.iter::<f32>()),
        }
    }
}

/// A worker's gradient for `spec` (its values), on `main` and registered under the leader's id.
/// A gradient with no worker's gradient slot occupied still advances through the values, so
/// an absent one keeps the others aligned.
fn register_grad(
    grads: &mut GradientsParams,
    spec: &ParamSpec,
    values: &[f32],
    main: &Device,
) -> std::result::Result<(), String> {
    let data = TensorData::new(values.to_vec(), spec.dims.clone());
    macro_rules! of_rank {
        ($($d:literal),*) => {
            match spec.dims.len() {
                $($d => grads.register::<$d>(
                    spec.id,
                    Tensor::<$d>::from_data(data, &main.clone().inner()).to_device(main),
                ),)*
                rank => return Err(format!("a rank-{rank} parameter is not supported")),
            }
        };
    }
    of_rank!(1, 2, 3, 4);
    Ok(())
}
/// Every float parameter's values of `model`, one after the other in visiting order: the
/// parameters as a worker's step receives them.
pub fn param_values<M: Module>(model: &M) -> Vec<f32> {
    let mut params = ParamValues::default();
    model.visit(&mut params);
    params.values
}

/// Whether each float parameter of `model` is trained (in visiting order), for the worker to
/// build its copy alike: a frozen parameter gets no gradient there either.
pub fn trained_params<M: Module>(model: &M) -> Vec<bool> {
    struct Trained(Vec<bool>);
    impl ModuleVisitor for Trained {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.is_require_grad());
        }
    }
    let mut trained = Trained(Vec::new());
    model.visit(&mut trained);
    trained.0
}

/// Each float parameter's gradient in `grads` (visiting order), as data for the leader.
pub fn param_grads<M: Module>(model: &M, grads: &burn::tensor::Gradients) -> Vec<ParamGrad> {
    struct Collect<'a>(&'a burn::tensor::Gradients, Vec<ParamGrad>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let grad = param
                .is_require_grad()
                .then(|| value.grad(self.0))
                .flatten();
            self.1.push(ParamGrad {
                size: value.shape().num_elements(),
                grad: grad.map(Tensor::into_data),
            });
        }
    }
    let mut collect = Collect(grads, Vec::new());
    model.visit(&mut collect);
    collect.1
}

/// Fills a freshly built model's float parameters, in visiting order, with the leader's values
/// (one after the other, as the leader sent them), each on `device` and trained as on the
/// leader. The model's own (lazy) initial values are never computed.
pub struct ParamFill<'a> {
    pub values: &'a [f32],
    pub trained: &'a [bool],
    pub device: &'a Device,
    /// Parameters filled so far.
    pub count: usize,
    /// Values used so far.
    pub used: usize,
    pub failed: Option<String>,
}

impl<'a> ParamFill<'a> {
    pub fn new(values: &'a [f32], trained: &'a [bool], device: &'a Device) -> Self {
        ParamFill {
            values,
            trained,
            device,
            count: 0,
            used: 0,
            failed: None,
        }
    }

    /// Why the model and the leader's values do not match, if they do not.
    pub fn mismatch(&self) -> Option<String> {
        self.failed.clone().or_else(|| {
            (self.used != self.values.len() || self.count != self.trained.len()).then(|| {
                format!(
                    "the leader sent {} values of {} parameters; this model has {} values in {} \
                     parameters",
                    self.values.len(),
                    self.trained.len(),
                    self.used,
                    self.count
                )
            })
        })
    }
}

impl ModuleMapper for ParamFill<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let k = self.count;
        self.count += 1;
        let shape = param.lazy_shape();
        let end = self.used + shape.num_elements();
        if self.failed.is_some() || end > self.values.len() {
            self.failed
                .get_or_insert_with(|| format!("the leader sent too few values for parameter {k}"));
            return param;
        }
        let data = TensorData::new(self.values[self.used..end].to_vec(), shape);
        self.used = end;
        let tensor = Tensor::<D>::from_data(data, self.device);
        let trained = self.trained.get(k).copied().unwrap_or(true);
        Param::initialized(param.id, tensor.set_require_grad(trained))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer keeps every parameter's place: a parameter without a gradient (frozen, or
    /// unused by the objective) between two with one leaves them where the leader reads them.
    #[test]
    fn an_answer_reads_back_with_absent_gradients_in_place() {
        let grads = vec![
            ParamGrad {
                size: 2,
                grad: Some(TensorData::new(vec![1.0f32, 2.0], [2])),
            },
            ParamGrad {
                size: 3,
                grad: None,
            },
            ParamGrad {
                size: 1,
                grad: Some(TensorData::new(vec![7.0f32], [1])),
            },
        ];
        let mut out = vec![0.0; 2 + 3 + 6];
        pack_answer(StepAnswer { loss: 0.5, grads }, &mut out).unwrap();
        let (loss, back) = unpack_answer(&out, &[2, 3, 1]).unwrap();
        assert_eq!(loss, 0.5);
        assert_eq!(back, vec![Some(&[1.0, 2.0][..]), None, Some(&[7.0][..])]);
        // A gradient of the wrong size, or an answer of the wrong length, is an error.
        let wrong = vec![ParamGrad {
            size: 2,
            grad: Some(TensorData::new(vec![1.0f32], [1])),
        }];
        assert!(
            pack_answer(
                StepAnswer {
                    loss: 0.0,
                    grads: wrong
                },
                &mut [0.0; 5]
            )
            .is_err()
        );
        assert!(unpack_answer(&out[1..], &[2, 3, 1]).is_err());
    }

    /// A request's bytes come back exactly, whatever their length modulo four.
    #[test]
    fn a_request_reads_back_byte_for_byte() {
        for request in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            b"{\"rows\": [1, 2, 3]}",
        ] {
            let words = request_tensor(request, &Device::flex()).into_data();
            assert_eq!(request_bytes(words.iter::<i64>()), request);
        }
    }
}
