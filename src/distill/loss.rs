//! LRC-BERT's losses: COS-NCE between mapped student layers and the teacher's (angular
//! distance `1 − cos`, the same input pulled close, the batch's other inputs pushed away), the
//! output-level losses of stage 2, and the FGM-style gradient perturbation of the embedding
//! output.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// Row-wise cosine similarities `[a_rows, b_rows]`.
pub fn cosine_matrix(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let unit = |x: Tensor<2>| {
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        x / norm
    };
    unit(a).matmul(unit(b).transpose())
}

/// COS-NCE: for each row `i` of the (width-mapped) student representations, the angular
/// distance `d(i, j) = 1 − cos(s_i, t_j)` to every teacher representation of the batch enters a
/// softmax over `−d/τ`, and the loss is the cross-entropy of picking `t_i` — the same input is
/// pulled towards distance 0, the other inputs pushed away. Mean over rows.
pub fn cos_nce(student: Tensor<2>, teacher: Tensor<2>, tau: f64) -> Tensor<1> {
    cos_nce_rows(student, teacher, tau, 0)
}

/// COS-NCE of a shard of the batch: `student` holds the batch's rows `first..`, `teacher` the
/// whole batch (every other input of the batch stays a negative). The teacher's side is a
/// constant, so each row's term depends on its own student row only, and the shards' terms are
/// exactly the batch's.
pub fn cos_nce_rows(student: Tensor<2>, teacher: Tensor<2>, tau: f64, first: usize) -> Tensor<1> {
    let [n, _] = student.dims();
    let device = student.device();
    let logits = (cosine_matrix(student, teacher) - 1.0).div_scalar(tau);
    let own = Tensor::<1, Int>::arange(first as i64..(first + n) as i64, &device).reshape([n, 1]);
    log_softmax(logits, 1).gather(1, own).mean().neg()
}

/// Stage 2: mean angular distance `1 − cos` between each student output and the teacher's.
pub fn output_cosine(student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
    let unit = |x: Tensor<2>| {
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        x / norm
    };
    let cos = (unit(student) * unit(teacher)).sum_dim(1);
    (cos.neg() + 1.0).mean()
}

/// Mean angular distance `1 − cos` between the student's and the teacher's state of every real
/// word-piece (`mask` 1), over the batch's word-pieces. A pooled vector is one target per text;
/// every piece's state is one per word-piece, so a small catalog teaches the student the
/// teacher's function on far more points than it has texts.
pub fn token_cosine(student: Tensor<3>, teacher: Tensor<3>, mask: Tensor<2>) -> Tensor<1> {
    let unit = |x: Tensor<3>| {
        let norm = x.clone().powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-12);
        x / norm
    };
    let [b, t, _] = student.dims();
    let cos = (unit(student) * unit(teacher)).sum_dim(2).reshape([b, t]);
    let pieces = mask.clone().sum().clamp_min(1.0);
    ((cos.neg() + 1.0) * mask).sum() / pieces
}

/// Stage 2: KL(teacher ‖ student) between the in-batch similarity distributions (each row's
/// softmax of cosine/τ over the batch), mean over rows — the geometry of the batch, not only
/// each point, is distilled.
pub fn similarity_kl(student: Tensor<2>, teacher: Tensor<2>, tau: f64) -> Tensor<1> {
    let [n, _] = student.dims();
    let t = cosine_matrix(teacher.clone(), teacher).div_scalar(tau);
    let s = cosine_matrix(student.clone(), student).div_scalar(tau);
    let p = softmax(t.clone(), 1);
    let kl = p * (log_softmax(t, 1) - log_softmax(s, 1));
    kl.sum().div_scalar(n as f64)
}

/// MiniLM's relation loss: KL(teacher ‖ student) between two relation distributions
/// (log-probabilities `[batch, heads, seq, seq]` over the last axis), mean over the real query
/// pieces (`mask` `[batch, seq]`, 1 real) and the kept heads (`heads` `[heads]`, 1 kept): a
/// pruned head's relation is not taught, as it is gone once the student is sliced.
pub fn relation_kl(
    student: Tensor<4>,
    teacher: Tensor<4>,
    mask: Tensor<2>,
    heads: Tensor<1>,
) -> Tensor<1> {
    let [b, h, s, _] = student.dims();
    let kl = (teacher.clone().exp() * (teacher - student))
        .sum_dim(3)
        .reshape([b, h, s]);
    let weight = mask.reshape([b, 1, s]) * heads.reshape([1, h, 1]);
    let count = weight.clone().sum().clamp_min(1.0);
    (kl * weight).sum() / count
}

/// FGM: the embedding output moved by `epsilon` along its loss gradient, normalised per example
/// (`e + ε·g/‖g‖`), so the student also learns to match the teacher in a small neighbourhood.
pub fn perturb(embedded: Tensor<3>, grad: Tensor<3>, epsilon: f64) -> Tensor<3> {
    let [b, s, h] = grad.dims();
    let norm = grad
        .clone()
        .reshape([b, s * h])
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12)
        .reshape([b, 1, 1]);
    embedded + grad.div(norm).mul_scalar(epsilon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(v: &[f32], shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Device::flex())
    }

    /// The relation KL worked by hand on one head, two pieces: row 0 teacher (½, ½) against
    /// student (¼, ¾), row 1 equal; a padded query piece and a pruned head do not count.
    #[test]
    fn relation_kl_matches_a_hand_computed_example() {
        let d = Device::flex();
        let logs = |v: [f32; 4]| {
            Tensor::<4>::from_data(
                TensorData::new(v.iter().map(|p| p.ln()).collect::<Vec<_>>(), [1, 1, 2, 2]),
                &d,
            )
        };
        let teacher = logs([0.5, 0.5, 0.9, 0.1]);
        let student = logs([0.25, 0.75, 0.9, 0.1]);
        let row0 = 0.5 * (0.5f32 / 0.25).ln() + 0.5 * (0.5f32 / 0.75).ln();
        let one = Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &d);
        let both = relation_kl(
            student.clone(),
            teacher.clone(),
            t2(&[1.0, 1.0], [1, 2]),
            one.clone(),
        )
        .into_scalar::<f32>();
        assert!((both - row0 / 2.0).abs() < 1e-6, "{both} vs {}", row0 / 2.0);
        let first = relation_kl(
            student.clone(),
            teacher.clone(),
            t2(&[1.0, 0.0], [1, 2]),
            one.clone(),
        )
        .into_scalar::<f32>();
        assert!((first - row0).abs() < 1e-6, "{first} vs {row0}");
        let pruned = relation_kl(student, teacher, t2(&[1.0, 1.0], [1, 2]), one.zeros_like())
            .into_scalar::<f32>();
        assert_eq!(pruned, 0.0);
    }

    /// Per-piece angular distance worked by hand; padded pieces do not count.
    #[test]
    fn token_cosine_averages_real_pieces_only() {
        let d = Device::flex();
        // Text 0: pieces (1,0)~(1,0) cos 1 and (1,0)~(0,1) cos 0; text 1: (0,3)~(0,1) cos 1,
        // then a padded piece whose states disagree (cos -1) but is masked out.
        let s = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 1.0, 0.0, 0.0, 3.0, 1.0, 0.0], [2, 2, 2]),
            &d,
        );
        let t = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, -1.0, 0.0], [2, 2, 2]),
            &d,
        );
        let mask = t2(&[1.0, 1.0, 1.0, 0.0], [2, 2]);
        let loss = token_cosine(s, t, mask).into_scalar::<f32>();
        // (0 + 1 + 0) / 3 real pieces.
        assert!((loss - 1.0 / 3.0).abs() < 1e-6, "{loss}");
    }

    /// COS-NCE against the formula worked by hand on two 2-d pairs.
    #[test]
    fn cos_nce_matches_a_hand_computed_example() {
        // s0 = (1,0), s1 = (0,2); t0 = (1,1), t1 = (0,1).
        let s = t2(&[1.0, 0.0, 0.0, 2.0], [2, 2]);
        let t = t2(&[1.0, 1.0, 0.0, 1.0], [2, 2]);
        let tau = 0.5;
        let r = std::f64::consts::FRAC_1_SQRT_2;
        // cos: s0·t0 = r, s0·t1 = 0, s1·t0 = r, s1·t1 = 1.
        let row = |pos: f64, neg: f64| {
            let (a, b) = ((pos - 1.0) / tau, (neg - 1.0) / tau);
            -(a - (a.exp() + b.exp()).ln())
        };
        let want = (row(r, 0.0) + row(1.0, r)) / 2.0;
        let got = f64::from(cos_nce(s.clone(), t.clone(), tau).into_scalar::<f32>());
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Each row alone, against the whole batch's teacher rows, gives its own term.
        let second = f64::from(cos_nce_rows(s.slice([1..2, 0..2]), t, tau, 1).into_scalar::<f32>());
        assert!(
            (second - row(1.0, r)).abs() < 1e-5,
            "{second} vs {}",
            row(1.0, r)
        );
    }

    #[test]
    fn output_losses_are_zero_for_the_teacher_itself() {
        let t = t2(&[1.0, 2.0, -1.0, 0.5, 0.3, 3.0], [3, 2]);
        let scaled = t.clone().mul_scalar(3.0);
        assert!(
            output_cosine(scaled.clone(), t.clone())
                .into_scalar::<f32>()
                .abs()
                < 1e-6
        );
        assert!(
            similarity_kl(scaled, t.clone(), 0.1)
                .into_scalar::<f32>()
                .abs()
                < 1e-6
        );
        let other = t2(&[0.0, 1.0, 1.0, 0.0, -1.0, -1.0], [3, 2]);
        assert!(output_cosine(other.clone(), t.clone()).into_scalar::<f32>() > 0.1);
        assert!(similarity_kl(other, t, 0.1).into_scalar::<f32>() > 0.01);
    }

    /// The perturbation is ε along the per-example normalised gradient, and (to first order)
    /// raises the loss it was taken from.
    #[test]
    fn perturbation_moves_the_embedding_along_the_gradient() {
        // An autodiff pass on the shared CPU device: keep out of the seeded comparisons' way.
        let _seeded = crate::fixtures::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let device = Device::flex().autodiff();
        let e = Tensor::<3>::from_data(
            TensorData::new(
                (0..12).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(),
                [2, 3, 2],
            ),
            &device,
        )
        .require_grad();
        let target = Tensor::<3>::ones([2, 3, 2], &device);
        let loss_of = |x: Tensor<3>| (x - target.clone()).powi_scalar(2).sum();
        let grads = loss_of(e.clone()).backward();
        let g = e.grad(&grads).unwrap();
        let moved = perturb(e.clone().inner(), g.clone(), 0.01);
        let delta = (moved.clone() - e.clone().inner()).reshape([2, 6]);
        let norms: Vec<f32> = delta
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(norms.iter().all(|n| (n - 0.01).abs() < 1e-5), "{norms:?}");
        let cos = cosine_matrix(delta, g.reshape([2, 6]));
        let diag: Vec<f32> = cos.into_data().try_to_vec().unwrap();
        assert!(
            (diag[0] - 1.0).abs() < 1e-5 && (diag[3] - 1.0).abs() < 1e-5,
            "{diag:?}"
        );
        let before = loss_of(e.inner()).into_scalar::<f32>();
        let after = loss_of(moved).into_scalar::<f32>();
        assert!(after > before, "{after} ≤ {before}");
    }
}
