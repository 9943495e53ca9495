//! Token usage: reading it from upstream answers and pricing it.
