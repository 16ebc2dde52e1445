//! The `baton` command.
