//! The request path's pure work on a body, per call, on fixed bodies: `inspect` (the one parse:
//! model, caps, members, bounds), the reservation, and `forward_body` (the body sent upstream:
//! the output cap, `store: false` and `stream_options` spliced in). Run by `make bench` (and
//! `cargo bench --bench request_body`); under `valgrind --tool=callgrind` it gives instruction
//! counts, which a busy machine does not skew.
//!
//! Prints, per body: nanoseconds per call (median of 15 rounds) for inspect + reserve +
//! forward_body together, and the body's size.

use std::hint::black_box;
use std::time::Instant;
use teamkeys::gateway::members::UnknownMembers;
use teamkeys::gateway::metering::Metering;
use teamkeys::gateway::request::{forward_body, inspect};
use teamkeys::gateway::route::classify;
use teamkeys::policy::KeyRules;
use teamkeys::usage::{Pricing, DEFAULT_PRICING_JSON};

/// (name, path, body)
fn bodies() -> Vec<(&'static str, &'static str, String)> {
    let chat = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"hello there, how are you today?"}],"temperature":0.2}"#;
    let long_text = "lorem ipsum dolor sit amet ".repeat(400);
    let chat_long = format!(
        r#"{{"model":"gpt-4o","stream":true,"messages":[{{"role":"user","content":"{long_text}"}}],"tools":[{{"type":"function","function":{{"name":"f","parameters":{{"type":"object","properties":{{"q":{{"type":"string"}}}}}}}}}}]}}"#
    );
    let responses = r#"{"model":"gpt-4o","input":"hi","max_output_tokens":64}"#;
    let anthropic = r#"{"model":"claude-sonnet-4","max_tokens":256,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"describe"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}}]}]}"#;
    let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"hello"}]}],"generationConfig":{"temperature":0.5}}"#;
    vec![
        ("openai chat, small", "/openai/v1/chat/completions", chat.to_owned()),
        ("openai chat, 11 KB stream + tool", "/openai/v1/chat/completions", chat_long),
        ("openai responses", "/openai/v1/responses", responses.to_owned()),
        ("anthropic stream + image", "/anthropic/v1/messages", anthropic.to_owned()),
        ("gemini generateContent", "/gemini/v1beta/models/gemini-2.5-flash:generateContent", gemini.to_owned()),
    ]
}

fn main() {
    let pricing = Pricing::from_json(DEFAULT_PRICING_JSON).expect("the default pricing parses");
    let rules: KeyRules =
        serde_json::from_str(r#"{"limits":{"spend":[{"period":"daily","limit_micros":100000000}]}}"#).unwrap();
    let iterations: u32 = std::env::var("BENCH_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    println!("| body | bytes | inspect + reserve + forward_body, ns/call |");
    println!("|---|---:|---:|");
    for (name, path, body) in bodies() {
        let route = classify("POST", path).unwrap();
        let one = || {
            let mut facts = inspect(&route, black_box(body.as_bytes())).unwrap();
            let price = facts.model.as_deref().and_then(|m| pricing.price(m)).copied();
            let metering = Metering::reserve(&route, &mut facts, &rules, price, UnknownMembers::Pass);
            let sent = forward_body(&route, &facts, body.as_bytes(), None).unwrap();
            black_box((metering.map(|m| m.ask).ok(), sent.len()))
        };
        let mut rounds: Vec<f64> = (0..15)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..iterations {
                    one();
                }
                start.elapsed().as_nanos() as f64 / f64::from(iterations)
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        println!("| {name} | {} | {:.0} |", body.len(), rounds[rounds.len() / 2]);
    }
}
