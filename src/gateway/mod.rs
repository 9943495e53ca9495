//! The data plane's pure parts: which call a request names ([`route`]), what its body says and
//! what is sent upstream ([`request`]), which headers cross ([`forwarding`]), what the call is
//! reserved and charged ([`metering`]), the limit headers of the answer ([`headers`]) and the
//! filtered model lists ([`models_list`]).

pub mod body_view;
pub mod bounds;
pub mod forwarding;
pub mod headers;
pub mod members;
pub mod metering;
pub mod models_list;
pub mod request;
pub mod route;
