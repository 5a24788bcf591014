//! Password hashing, random secrets and JWT signing keys.

pub mod device;
pub mod jwt;
pub mod password;
pub mod token;
pub mod totp;
