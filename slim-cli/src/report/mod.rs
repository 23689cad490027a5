//! Views of a finished report. The report model itself (report.json, a stable contract) is
//! written by `commands::report`; this module only reads it back, as JSON, so that any
//! report.json can be shown again. Pure: no engine, no files.

pub mod html;
