#![allow(dead_code)]
pub mod drive;
pub mod fuzzing;
#[cfg(not(fuzzing))]
pub mod gen;
pub mod lab;
pub mod oracle;
pub mod pair;
pub mod sim;
pub mod v1parse;
pub mod v2oracle;
pub mod v2parse;
