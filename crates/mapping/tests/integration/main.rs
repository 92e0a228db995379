//! The integration tests of `mapping`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod check;
mod emulate;
mod map;
mod render;
