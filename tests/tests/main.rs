//! The integration tests of the bak tools: one test binary, one module per behaviour, helpers
//! once (`util`, `mtf_support`), as ripgrep's `tests/tests.rs` does.
//!
//! The tests run the real binaries from the target directory: build the workspace first
//! (`cargo build --workspace && cargo test --workspace`).

#[macro_use]
mod util;
mod mtf_support;
mod store_support;

// bak media through the tools.
mod appends_and_init;
mod concatenated_media;
mod encrypted_sets;
mod errors_and_exit_codes;
mod fault_injection;
mod flags_as_documented;
mod format_1_0_media;
mod generated_docs;
mod header_listing;
mod header_many;
mod hostile_environment;
mod interrupts;
mod nothing_lost;
mod object_faults;
mod object_storage;
mod pipes_and_fifos;
mod progress_output;
mod read_checks_like_verify;
mod salvage;
mod verify_reports;
mod volumes;
mod write_read;

// bak-core in process.
mod fuzz_regressions;
mod library_in_memory;
mod roundtrip_props;
mod short_reads;

// SQL Server backups (Microsoft Tape Format).
mod sqlserver_chain;
mod sqlserver_checksums;
mod sqlserver_cli;
mod sqlserver_damage;
mod sqlserver_files;
mod sqlserver_fixtures;
mod sqlserver_headeronly;
mod sqlserver_pipes;
mod sqlserver_range;
mod sqlserver_rows;
mod sqlserver_synthetic;
mod sqlserver_tables;
mod sqlserver_unsupported;
