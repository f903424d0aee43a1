//! Operations commands: `ops redrive` ([`redrive`]) and `ops load`
//! ([`load`]). The entry point (`main.rs`) only parses arguments and wires.

pub mod load;
pub mod redrive;
