//! HTTP API (port 7070).
