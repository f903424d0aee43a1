//! The integration tests that work on files only (rule files, the
//! CloudFormation template, dashboards, runbooks, log corpora, the replay
//! binary): one binary, one module per subject; no stack needed.

mod replay_support;

mod config_catalogue;
mod dashboards;
mod default_rules_reference;
mod defences;
mod drift_vocabulary;
mod failure_wordings;
mod filter_pattern_conformance;
mod first_deploy;
mod iam_scoping;
mod layering;
mod replay_cli;
mod replay_compromise;
mod runbooks;
