#![allow(dead_code)]
pub mod gen;
pub mod oracle;
pub mod v1parse;
