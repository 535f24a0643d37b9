#![allow(dead_code)]
pub mod gen;
pub mod oracle;
pub mod pair;
pub mod sim;
pub mod v1parse;
