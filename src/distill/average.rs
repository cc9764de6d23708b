//! Polyak averaging of the student's weights while its pruned shape settles: the distilled
//! model is the exponential moving average of the weights the optimizer visits, which sits in
//! a flatter part of the loss than any one step and generalises a little better to texts the
//! student was not trained on.

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// `average ← β·average + (1 − β)·current`, parameter by parameter, for two modules of the same
/// structure (parameters are paired in visiting order).
pub fn blend<M: Module>(average: M, current: &M, beta: f64) -> M {
    struct Collect(VecDeque<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push_back(param.val().flatten(0, D - 1));
        }
    }
    struct Blend(VecDeque<Tensor<1>>, f64);
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let current = self.0.pop_front().expect("modules of the same structure");
            let beta = self.1;
            param.map(|a| {
                let shape = a.shape();
                a.mul_scalar(beta) + current.reshape(shape).mul_scalar(1.0 - beta)
            })
        }
    }
    let mut collect = Collect(VecDeque::new());
    current.visit(&mut collect);
    let mut blend = Blend(collect.0, beta);
    let out = average.map(&mut blend);
    assert!(blend.0.is_empty(), "modules of the same structure");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    fn values(l: &Linear) -> Vec<f32> {
        let mut v: Vec<f32> = l.weight.val().into_data().try_to_vec().unwrap();
        v.extend(
            l.bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        v
    }

    /// Every parameter (a matrix and a vector) moves to β·average + (1 − β)·current.
    #[test]
    fn blend_moves_every_parameter_towards_the_current_weights() {
        // Initialising the layers draws from the shared CPU generator: hold the lock that
        // seeded comparisons (the exact-resume tests) take.
        let _seeded = crate::fixtures::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let d = Device::flex();
        let a = LinearConfig::new(3, 2).init(&d);
        let b = LinearConfig::new(3, 2).init(&d);
        let (va, vb) = (values(&a), values(&b));
        assert_ne!(va, vb);
        let mixed = values(&blend(a.clone(), &b, 0.75));
        for ((m, x), y) in mixed.iter().zip(&va).zip(&vb) {
            assert!((m - (0.75 * x + 0.25 * y)).abs() < 1e-6, "{m} {x} {y}");
        }
        assert_eq!(values(&blend(a, &b, 0.0)), vb);
    }
}
