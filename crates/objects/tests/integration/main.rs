//! The integration tests of `objects`, as modules of one test binary: one link of the
//! dependencies (the AWS SDK among them) instead of one per file.

mod dead_letters;
mod read;
mod trigger;
