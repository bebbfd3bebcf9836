//! Reader of SQL Server native backups (Microsoft Tape Format). See docs/MTF.md.
