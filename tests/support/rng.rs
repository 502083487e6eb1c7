//! A fixed, dependency-free stream of pseudo-random numbers, for tests whose inputs must be the same on
//! every run (their expected numbers, and README's, were measured on these streams).

/// xorshift64*, seeded with its state (any value but 0).
pub struct Rng(pub u64);

impl Rng {
    /// The next number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal number (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_f64().max(1e-12), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
