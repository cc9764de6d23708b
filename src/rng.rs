//! The one seeded generator of the crate: SplitMix64, tiny and identical on every target, so a
//! seed gives the same shuffles, splits and synthetic data natively and in the browser.

/// SplitMix64 (Steele, Lea and Flood, 2014). The state is public so a checkpoint can save and
/// restore it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next draw, uniform in `[0, 1)` with 24 bits of precision.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The next raw 64-bit draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A draw uniform in `0..n` (`n` > 0; the modulo bias is below 2⁻⁴⁰ for any `n` < 2²⁴).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `n` draws uniform in `[center - spread, center + spread]`.
    pub fn uniform(&mut self, n: usize, center: f32, spread: f32) -> Vec<f32> {
        (0..n)
            .map(|_| center + spread * (2.0 * self.next_f32() - 1.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix;

    #[test]
    fn same_seed_same_draws_and_draws_stay_in_range() {
        let a: Vec<f32> = (0..1000)
            .scan(SplitMix(9), |r, _| Some(r.next_f32()))
            .collect();
        let b: Vec<f32> = (0..1000)
            .scan(SplitMix(9), |r, _| Some(r.next_f32()))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
        // The first draw of seed 0 is SplitMix64's published first output (0xE220A8397B1DCDAF)
        // reduced to its top 24 bits.
        assert_eq!(
            SplitMix(0).next_f32(),
            (0xE220_A839_7B1D_CDAFu64 >> 40) as f32 / 16_777_216.0
        );
        let u = SplitMix(1).uniform(100, 2.0, 0.5);
        assert!(u.iter().all(|x| (1.5..=2.5).contains(x)));
    }
}
