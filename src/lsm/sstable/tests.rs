//! Tests of the table format and reader.
