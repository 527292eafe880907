//! Criterion benchmarks of mailmux's sans-I/O codecs; the benchmarks are in `benches/`.
//! `cargo bench -p mailmux-bench-codecs` runs them; `bench/README.md` has the figures.
