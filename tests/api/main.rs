//! The integration suite: a real server on a loopback port, a real SMTP
//! listener, and a fresh database per test: a SQLite file, or a new
//! PostgreSQL database when `TESSERA_TEST_DATABASE_URL` names a server.

mod helpers;

mod abuse;
mod admin;
mod bad_input;
mod binary;
mod bot;
mod browser;
mod cluster;
mod dashboard_api;
mod edge;
mod export;
mod health;
mod http_hygiene;
mod import;
mod integrity;
mod leaks;
mod legacy_api;
mod lockout;
mod login;
mod metrics;
mod oneshot;
mod passkeys;
mod recovery;
mod scope;
mod signup;
mod social;
mod tenants;
mod tokens;
mod two_factor;
mod ui;
mod unavailable;
