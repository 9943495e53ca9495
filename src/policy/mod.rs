//! Key records and the checks applied to every call.
