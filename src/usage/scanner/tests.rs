//! End-to-end: realistic upstream bodies of every family, fed in every way they may be cut.

use super::*;
use crate::usage::CacheWrites;

/// Feeds `chunks`, then finishes; returns what the client was sent, the usage read and whether
/// it was final.
fn scan(family: Family, kind: BodyKind, strip: bool, chunks: &[&[u8]]) -> (Vec<u8>, Option<Usage>, bool) {
    let mut scanner = UsageScanner::new(family, kind, strip);
    let mut sent = Vec::new();
    for chunk in chunks {
        match scanner.feed(chunk) {
            Forward::Unchanged => sent.extend_from_slice(chunk),
            Forward::Replaced(bytes) => sent.extend_from_slice(&bytes),
        }
    }
    sent.extend_from_slice(&scanner.finish());
    (sent, scanner.usage(), scanner.is_final())
}

/// What a body should read as: its usage, and whether that is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Read {
    usage: Option<Usage>,
    is_final: bool,
}

/// The final count `usage`.
fn final_usage(usage: Usage) -> Read {
    Read { usage: Some(usage), is_final: true }
}

/// `usage` seen so far, not final.
fn partial(usage: Option<Usage>) -> Read {
    Read { usage, is_final: false }
}

/// Asserts that `body` whole, split in two at every offset, and fed byte by byte, sends
/// `sent` and reads as `read`.
fn assert_any_split(family: Family, kind: BodyKind, strip: bool, body: &[u8], sent: &[u8], read: Read) {
    let check = |chunks: &[&[u8]], how: &str| {
        let (got_sent, usage, is_final) = scan(family, kind, strip, chunks);
        assert_eq!(Read { usage, is_final }, read, "{how}");
        assert!(got_sent == sent, "sent bytes, {how}:\n{}", String::from_utf8_lossy(&got_sent));
    };
    check(&[body], "whole");
    for at in 0..=body.len() {
        check(&[&body[..at], &body[at..]], &format!("split at {at}"));
    }
    check(&body.chunks(1).collect::<Vec<_>>(), "byte by byte");
}

/// `events` joined, with `\n` line endings or `\r\n`.
fn stream(events: &[&str], crlf: bool) -> Vec<u8> {
    let joined = events.concat();
    let joined = if crlf { joined.replace('\n', "\r\n") } else { joined };
    joined.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// OpenAI

const OPENAI_CHAT_JSON: &str = r#"{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The response carries a \"usage\": {\"prompt_tokens\": 999} object.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {
      "cached_tokens": 1024,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}
"#;

/// A chat stream with `stream_options.include_usage`; [`OPENAI_CHAT_USAGE_EVENT`] is the usage-only chunk.
const OPENAI_CHAT_EVENTS: [&str; 5] = [
    "data: {\"id\":\"chatcmpl-BxZ\",\"object\":\"chat.completion.chunk\",\"created\":1753000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"qP\"}\n\n",
    "data: {\"id\":\"chatcmpl-BxZ\",\"object\":\"chat.completion.chunk\",\"created\":1753000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Set \\\"usage\\\":{\\\"prompt_tokens\\\":5} here\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"x\"}\n\n",
    "data: {\"id\":\"chatcmpl-BxZ\",\"object\":\"chat.completion.chunk\",\"created\":1753000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null,\"obfuscation\":\"3bq\"}\n\n",
    "data: {\"id\":\"chatcmpl-BxZ\",\"object\":\"chat.completion.chunk\",\"created\":1753000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":29,\"prompt_tokens_details\":{\"cached_tokens\":3,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"Zk1\"}\n\n",
    "data: [DONE]\n\n",
];
const OPENAI_CHAT_USAGE_EVENT: usize = 3;
const NO_CACHE_WRITES: CacheWrites = CacheWrites { five_minutes: 0, one_hour: 0 };
const OPENAI_CHAT_USAGE: Usage =
    Usage { input_tokens: 19, cached_input_tokens: 3, cache_writes: NO_CACHE_WRITES, output_tokens: 10 };

/// The chat stream without its usage-only chunk: what a client that did not ask for usage gets.
fn openai_chat_without_usage(crlf: bool) -> Vec<u8> {
    let mut events = OPENAI_CHAT_EVENTS.to_vec();
    events.remove(OPENAI_CHAT_USAGE_EVENT);
    stream(&events, crlf)
}

const OPENAI_RESPONSES_EVENTS: [&str; 4] = [
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_67c\",\"object\":\"response\",\"created_at\":1753000000,\"status\":\"in_progress\",\"model\":\"o3-2025-04-16\",\"output\":[],\"usage\":null,\"user\":null,\"metadata\":{}}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_67c\",\"output_index\":1,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
    "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"sequence_number\":5,\"item_id\":\"msg_67c\",\"output_index\":1,\"content_index\":0,\"text\":\"Hi\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"resp_67c\",\"object\":\"response\",\"created_at\":1753000000,\"status\":\"completed\",\"model\":\"o3-2025-04-16\",\"output\":[{\"id\":\"rs_67c\",\"type\":\"reasoning\",\"summary\":[]},{\"type\":\"message\",\"id\":\"msg_67c\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\",\"annotations\":[]}]}],\"tools\":[],\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":32},\"output_tokens\":210,\"output_tokens_details\":{\"reasoning_tokens\":192},\"total_tokens\":247},\"user\":null,\"metadata\":{\"usage\":\"internal\"}}}\n\n",
];
const OPENAI_RESPONSES_USAGE: Usage =
    Usage { input_tokens: 37, cached_input_tokens: 32, cache_writes: NO_CACHE_WRITES, output_tokens: 210 };

const OPENAI_RESPONSES_JSON: &str = r#"{"id":"resp_67c","object":"response","created_at":1753000000,"status":"completed","model":"o3-2025-04-16","output":[{"type":"message","id":"msg_67c","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]}],"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":32},"output_tokens":210,"output_tokens_details":{"reasoning_tokens":192},"total_tokens":247},"user":null,"metadata":{"usage":"internal"}}"#;

const OPENAI_EMBEDDINGS_JSON: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;

#[test]
fn openai_json_bodies() {
    let cases = [
        (OPENAI_CHAT_JSON, Usage::new(1117, 1024, 46)),
        (OPENAI_RESPONSES_JSON, OPENAI_RESPONSES_USAGE),
        (OPENAI_EMBEDDINGS_JSON, Usage::new(8, 0, 0)),
    ];
    for (body, usage) in cases {
        let body = body.as_bytes();
        assert_any_split(Family::OpenAi, BodyKind::Json, false, body, body, final_usage(usage));
    }
}

#[test]
fn openai_chat_stream() {
    for crlf in [false, true] {
        let body = stream(&OPENAI_CHAT_EVENTS, crlf);
        assert_any_split(Family::OpenAi, BodyKind::EventStream, false, &body, &body, final_usage(OPENAI_CHAT_USAGE));
    }
}

#[test]
fn openai_chat_stream_without_include_usage_reports_none() {
    let body = openai_chat_without_usage(false);
    assert_any_split(Family::OpenAi, BodyKind::EventStream, false, &body, &body, partial(None));
}

#[test]
fn openai_responses_stream() {
    for crlf in [false, true] {
        let body = stream(&OPENAI_RESPONSES_EVENTS, crlf);
        assert_any_split(
            Family::OpenAi,
            BodyKind::EventStream,
            false,
            &body,
            &body,
            final_usage(OPENAI_RESPONSES_USAGE),
        );
        // Responses events have no `choices`: stripping never removes one.
        assert_any_split(
            Family::OpenAi,
            BodyKind::EventStream,
            true,
            &body,
            &body,
            final_usage(OPENAI_RESPONSES_USAGE),
        );
    }
}

#[test]
fn openai_responses_stream_cut_before_completion_reports_none() {
    let body = stream(&OPENAI_RESPONSES_EVENTS[..3], false);
    assert_any_split(Family::OpenAi, BodyKind::EventStream, false, &body, &body, partial(None));
    // Cut inside `response.completed`: its line is not one whole document, so it says nothing.
    let mut body = stream(&OPENAI_RESPONSES_EVENTS, false);
    body.truncate(body.len() - 6);
    assert_any_split(Family::OpenAi, BodyKind::EventStream, false, &body, &body, partial(None));
}

// ---------------------------------------------------------------------------------------------
// Stripping the usage-only chunk

#[test]
fn strip_removes_exactly_the_usage_chunk() {
    for crlf in [false, true] {
        let body = stream(&OPENAI_CHAT_EVENTS, crlf);
        let expected = openai_chat_without_usage(crlf);
        assert_any_split(Family::OpenAi, BodyKind::EventStream, true, &body, &expected, final_usage(OPENAI_CHAT_USAGE));
    }
}

#[test]
fn strip_copies_nothing_when_chunks_are_whole_events() {
    let mut scanner = UsageScanner::new(Family::OpenAi, BodyKind::EventStream, true);
    for (i, event) in OPENAI_CHAT_EVENTS.iter().enumerate() {
        let expected = if i == OPENAI_CHAT_USAGE_EVENT { Forward::Replaced(Vec::new()) } else { Forward::Unchanged };
        assert_eq!(scanner.feed(event.as_bytes()), expected, "event {i}");
    }
    assert_eq!(scanner.finish(), b"");
    assert_eq!(scanner.usage(), Some(OPENAI_CHAT_USAGE));
}

#[test]
fn strip_holds_an_event_only_until_its_data_line_is_complete() {
    let mut scanner = UsageScanner::new(Family::OpenAi, BodyKind::EventStream, true);
    let first = OPENAI_CHAT_EVENTS[0].as_bytes();
    let (line, blank) = first.split_at(first.len() - 1);
    let (head, rest) = line.split_at(20);
    assert_eq!(scanner.feed(head), Forward::Replaced(Vec::new()));
    assert_eq!(scanner.feed(rest), Forward::Replaced(line.to_vec()));
    assert_eq!(scanner.feed(blank), Forward::Unchanged);
}

#[test]
fn strip_drops_the_whole_usage_event_and_keeps_comments_and_other_events() {
    let usage_chunk =
        r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#;
    let body = format!(
        ": keep-alive\n\ndata: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"a\"}}}}],\"usage\":null}}\n\n\
         id: 7\nevent: chunk\n: note\ndata: {usage_chunk}\nretry: 10\n\ndata: [DONE]\n\n"
    );
    let expected = ": keep-alive\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\ndata: [DONE]\n\n";
    let read = final_usage(Usage::new(4, 0, 2));
    assert_any_split(Family::OpenAi, BodyKind::EventStream, true, body.as_bytes(), expected.as_bytes(), read);
}

#[test]
fn strip_keeps_usage_that_comes_with_choices() {
    // Some OpenAI-compatible upstreams put usage on the last content chunk: the client needs it.
    let body = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    assert_any_split(Family::OpenAi, BodyKind::EventStream, true, body, body, final_usage(Usage::new(4, 0, 1)));
}

#[test]
fn strip_applies_to_openai_event_streams_only() {
    let body = stream(&OPENAI_CHAT_EVENTS, false);
    for family in [Family::Anthropic, Family::Gemini] {
        let (sent, _, _) = scan(family, BodyKind::EventStream, true, &[&body]);
        assert_eq!(sent, body);
    }
    // Read as JSON, an event stream is not one document: whatever it reads, it is not final.
    let (sent, _, is_final) = scan(Family::OpenAi, BodyKind::Json, true, &[&body]);
    assert_eq!((sent, is_final), (body, false));
}

#[test]
fn strip_at_a_body_end_without_line_ending() {
    // The last event's bytes are held until the body ends, then sent: nothing is lost...
    let body = b"data: {\"choices\":[{\"index\":0,\"delta\":{}}],\"usage\":null}\n\ndata: [DONE]";
    assert_any_split(Family::OpenAi, BodyKind::EventStream, true, body, body, partial(None));
    // ...and a usage chunk cut off from its line ending is still read, and still dropped (not
    // final: no `[DONE]`).
    let body = b"data: [X]\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}";
    assert_any_split(
        Family::OpenAi,
        BodyKind::EventStream,
        true,
        body,
        b"data: [X]\n\n",
        partial(Some(Usage::new(4, 0, 2))),
    );
}

#[test]
fn strip_releases_an_event_too_long_to_be_the_usage_chunk() {
    let content = "x".repeat(100_000);
    let body = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}],\"usage\":null}}\n\ndata: [DONE]\n\n"
    );
    let body = body.as_bytes();
    let mut scanner = UsageScanner::new(Family::OpenAi, BodyKind::EventStream, true);
    let (mut fed, mut sent) = (0, Vec::new());
    for piece in body.chunks(4096) {
        fed += piece.len();
        match scanner.feed(piece) {
            Forward::Unchanged => sent.extend_from_slice(piece),
            Forward::Replaced(bytes) => sent.extend_from_slice(&bytes),
        }
        assert!(fed - sent.len() <= 16 * 1024, "holding {} bytes", fed - sent.len());
    }
    sent.extend_from_slice(&scanner.finish());
    assert_eq!(sent, body);
}

// ---------------------------------------------------------------------------------------------
// Anthropic

const ANTHROPIC_JSON: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello! The \"usage\": {\"input_tokens\": 5} key is below."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":1800,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":6,"service_tier":"standard"}}"#;

const ANTHROPIC_EVENTS: [&str; 8] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":1000,\"cache_read_input_tokens\":2000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1000,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":2,\"service_tier\":\"standard\"}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"! \\\"usage\\\":{\\\"output_tokens\\\":1}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// The usage of [`ANTHROPIC_EVENTS`] with `output` tokens.
fn anthropic_usage(output: u64) -> Usage {
    Usage::with_cache_writes(3472, 2000, CacheWrites { five_minutes: 1000, one_hour: 0 }, output)
}

#[test]
fn anthropic_json_body() {
    let body = ANTHROPIC_JSON.as_bytes();
    assert_any_split(Family::Anthropic, BodyKind::Json, false, body, body, final_usage(Usage::new(1812, 1800, 6)));
}

#[test]
fn anthropic_stream() {
    for crlf in [false, true] {
        let body = stream(&ANTHROPIC_EVENTS, crlf);
        assert_any_split(
            Family::Anthropic,
            BodyKind::EventStream,
            false,
            &body,
            &body,
            final_usage(anthropic_usage(15)),
        );
    }
}

#[test]
fn anthropic_stream_cut_off_reports_what_it_reached() {
    // Cut before `message_delta`: input and cache counts from `message_start`, output so far.
    let body = stream(&ANTHROPIC_EVENTS[..6], false);
    let read = partial(Some(anthropic_usage(2)));
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, &body, &body, read);
    // Cut inside `message_delta`'s line: the unfinished line counts for nothing.
    let mut body = stream(&ANTHROPIC_EVENTS[..7], false);
    body.truncate(body.len() - 10);
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, &body, &body, read);
    // Cut before `message_stop`: the output count is the last, but not known to be.
    let body = stream(&ANTHROPIC_EVENTS[..7], false);
    let read = partial(Some(anthropic_usage(15)));
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, &body, &body, read);
    // Cut before `message_start` ended: nothing reported.
    let body = &ANTHROPIC_EVENTS[0].as_bytes()[..100];
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, body, body, partial(None));
}

#[test]
fn anthropic_cumulative_message_delta_updates_every_counter_it_reports() {
    // With server tools, `message_delta` repeats all counters, cumulatively.
    let mut events = ANTHROPIC_EVENTS.to_vec();
    events[6] = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":10682,\"cache_creation_input_tokens\":1000,\"cache_read_input_tokens\":2000,\"output_tokens\":510,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n";
    let body = stream(&events, false);
    let writes = CacheWrites { five_minutes: 1000, one_hour: 0 };
    let usage = Usage::with_cache_writes(13682, 2000, writes, 510);
    assert_eq!(scan(Family::Anthropic, BodyKind::EventStream, false, &[&body]), (body.clone(), Some(usage), true));
}

// ---------------------------------------------------------------------------------------------
// Gemini

const GEMINI_JSON: &str = r#"{
  "candidates": [
    {
      "content": {
        "parts": [
          {
            "text": "A \"usageMetadata\": {\"promptTokenCount\": 1} example."
          }
        ],
        "role": "model"
      },
      "finishReason": "STOP",
      "index": 0
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 2100,
    "candidatesTokenCount": 12,
    "totalTokenCount": 2151,
    "cachedContentTokenCount": 2048,
    "promptTokensDetails": [
      {
        "modality": "TEXT",
        "tokenCount": 2100
      }
    ],
    "thoughtsTokenCount": 39
  },
  "modelVersion": "gemini-2.5-flash",
  "responseId": "kIJTaOGpFqWvnvgPpb2d4Ac"
}
"#;

const GEMINI_EVENTS: [&str; 3] = [
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 1,\"totalTokenCount\": 49,\"thoughtsTokenCount\": 39},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"kIJTaOGp\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" answer\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 11,\"totalTokenCount\": 59,\"thoughtsTokenCount\": 39},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"kIJTaOGp\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" is 42.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 20,\"totalTokenCount\": 68,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 9}],\"thoughtsTokenCount\": 39},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"kIJTaOGp\"}\r\n\r\n",
];

#[test]
fn gemini_json_body() {
    let body = GEMINI_JSON.as_bytes();
    assert_any_split(Family::Gemini, BodyKind::Json, false, body, body, final_usage(Usage::new(2100, 2048, 51)));
}

#[test]
fn gemini_json_array_of_responses_reports_the_last() {
    let body = format!(
        "[{},\r\n{}]",
        &GEMINI_EVENTS[0][6..GEMINI_EVENTS[0].len() - 4],
        &GEMINI_EVENTS[2][6..GEMINI_EVENTS[2].len() - 4]
    );
    let body = body.as_bytes();
    assert_any_split(Family::Gemini, BodyKind::Json, false, body, body, final_usage(Usage::new(9, 0, 59)));
    let cut = &body[..body.len() - 1];
    assert_any_split(Family::Gemini, BodyKind::Json, false, cut, cut, partial(Some(Usage::new(9, 0, 59))));
}

#[test]
fn gemini_stream() {
    let body = stream(&GEMINI_EVENTS, false);
    assert_any_split(Family::Gemini, BodyKind::EventStream, false, &body, &body, final_usage(Usage::new(9, 0, 59)));
    let cut = stream(&GEMINI_EVENTS[..2], false);
    assert_any_split(Family::Gemini, BodyKind::EventStream, false, &cut, &cut, partial(Some(Usage::new(9, 0, 50))));
}

// ---------------------------------------------------------------------------------------------
// Bodies without usage, and large bodies

#[test]
fn bodies_without_usage_report_none() {
    let error = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    for family in [Family::OpenAi, Family::Anthropic, Family::Gemini] {
        for kind in [BodyKind::Json, BodyKind::EventStream] {
            assert_eq!(scan(family, kind, false, &[error]), (error.to_vec(), None, false));
            assert_eq!(scan(family, kind, false, &[]), (Vec::new(), None, false));
        }
    }
    let anthropic_error = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    assert_eq!(scan(Family::Anthropic, BodyKind::EventStream, false, &[anthropic_error]).1, None);
}

/// An OpenAI chat completion with `content_len` bytes of content that mention `"usage"` throughout.
fn huge_chat_completion(content_len: usize) -> Vec<u8> {
    let filler = r#"Quoting \"usage\": {\"prompt_tokens\": 1} again. "#;
    let content = filler.repeat(content_len / filler.len() + 1);
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":20,"completion_tokens":16384,"total_tokens":16404}},"system_fingerprint":"fp_1"}}"#
    )
    .into_bytes()
}

#[test]
fn huge_json_body_with_usage_at_the_end() {
    let body = huge_chat_completion(2 << 20);
    let usage = Some(Usage::new(20, 0, 16384));
    assert_eq!(scan(Family::OpenAi, BodyKind::Json, false, &[&body]), (body.clone(), usage, true));
    for size in [1, 4096, 65_536, 100_000] {
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        assert_eq!(scan(Family::OpenAi, BodyKind::Json, false, &chunks).1, usage, "chunks of {size}");
    }
}

#[test]
fn json_usage_far_from_the_end_is_read() {
    // The whole body is walked, not only its end.
    let body = format!(r#"{{"usage":{{"prompt_tokens":1}},"padding":"{}"}}"#, "p".repeat(200_000));
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(4096).collect();
    assert_eq!(scan(Family::OpenAi, BodyKind::Json, false, &chunks).1, Some(Usage::new(1, 0, 0)));
}

#[test]
fn huge_stream_event_with_usage_at_its_end() {
    // A Gemini chunk carrying a large inline image, then its usage.
    let image = "A".repeat(1 << 20);
    let body = format!(
        "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"inlineData\": {{\"mimeType\": \"image/png\",\"data\": \"{image}\"}}}}]}}}}],\"usageMetadata\": {{\"promptTokenCount\": 12,\"candidatesTokenCount\": 1290,\"totalTokenCount\": 1302}}}}\r\n\r\n"
    );
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(16 * 1024).collect();
    let (sent, usage, is_final) = scan(Family::Gemini, BodyKind::EventStream, false, &chunks);
    assert_eq!((usage, is_final), (Some(Usage::new(12, 0, 1290)), false));
    assert!(sent == body.as_bytes());
}

#[test]
fn content_type_decides_the_body_kind() {
    assert_eq!(BodyKind::from_content_type("text/event-stream"), BodyKind::EventStream);
    assert_eq!(BodyKind::from_content_type("Text/Event-Stream; charset=utf-8"), BodyKind::EventStream);
    assert_eq!(BodyKind::from_content_type("application/json"), BodyKind::Json);
    assert_eq!(BodyKind::from_content_type(""), BodyKind::Json);
}

// ---------------------------------------------------------------------------------------------
// Usage only where each provider writes it

/// A client's function tool whose JSON schema has a property named `usage`, as Responses
/// objects echo it, and a `text.format` schema likewise.
const ECHOED_TOOLS: &str = r#""tools":[{"type":"function","name":"report","parameters":{"type":"object","properties":{"usage":{"type":"object","properties":{"input_tokens":{"type":"integer"}}}},"required":["usage"]}}],"text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object","properties":{"usage":{"input_tokens":0,"output_tokens":0}}}}}"#;

#[test]
fn openai_responses_json_echoing_schemas_reads_its_own_usage() {
    let body = format!(
        r#"{{"id":"resp_1","object":"response","status":"completed",{ECHOED_TOOLS},"output":[{{"type":"function_call","name":"report","arguments":"{{\"usage\":{{\"input_tokens\":0}}}}"}}],"usage":{{"input_tokens":900,"input_tokens_details":{{"cached_tokens":0}},"output_tokens":4000,"output_tokens_details":{{"reasoning_tokens":3000}}}},"metadata":{{}}}}"#
    );
    let body = body.as_bytes();
    assert_any_split(Family::OpenAi, BodyKind::Json, false, body, body, final_usage(Usage::new(900, 0, 4000)));
    // A response whose own usage is null (queued, in progress) reports none, whatever it echoes.
    let queued = format!(r#"{{"id":"resp_1","object":"response","status":"queued",{ECHOED_TOOLS},"usage":null}}"#);
    let queued = queued.as_bytes();
    assert_any_split(Family::OpenAi, BodyKind::Json, false, queued, queued, partial(None));
}

#[test]
fn openai_responses_stream_echoing_schemas_reads_only_the_terminal_usage() {
    let created = format!(
        "event: response.created\ndata: {{\"type\":\"response.created\",\"response\":{{\"id\":\"r\",\"status\":\"in_progress\",{ECHOED_TOOLS},\"usage\":null}}}}\n\n"
    );
    let completed = format!(
        "event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"id\":\"r\",\"status\":\"completed\",{ECHOED_TOOLS},\"usage\":{{\"input_tokens\":50,\"output_tokens\":7000}}}}}}\n\n"
    );
    let body = [created.as_str(), OPENAI_RESPONSES_EVENTS[1], completed.as_str()].concat();
    let body = body.as_bytes();
    assert_any_split(Family::OpenAi, BodyKind::EventStream, true, body, body, final_usage(Usage::new(50, 0, 7000)));
    // `response.incomplete` (the output cap reached) is terminal too.
    let incomplete = completed.replace("response.completed", "response.incomplete");
    let (_, usage, is_final) = scan(Family::OpenAi, BodyKind::EventStream, false, &[incomplete.as_bytes()]);
    assert_eq!((usage, is_final), (Some(Usage::new(50, 0, 7000)), true));
    // A usage object in a non-terminal event is not read.
    let in_progress = completed.replace("response.completed", "response.in_progress");
    assert_eq!(scan(Family::OpenAi, BodyKind::EventStream, false, &[in_progress.as_bytes()]).1, None);
}

#[test]
fn openai_chat_usage_nested_elsewhere_is_not_read() {
    let body = br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}],"usage":{"prompt_tokens":1}}}],"metadata":{"usage":{"prompt_tokens":1}},"usage":{"prompt_tokens":300,"completion_tokens":20}}"#;
    assert_any_split(Family::OpenAi, BodyKind::Json, false, body, body, final_usage(Usage::new(300, 0, 20)));
    // A chunk's usage other than at its top level is not read, and `[DONE]` alone is not final.
    let chunk = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"usage\":{\"prompt_tokens\":1}}}],\"usage\":null}\n\ndata: [DONE]\n\n";
    assert_any_split(Family::OpenAi, BodyKind::EventStream, false, chunk, chunk, partial(None));
}

#[test]
fn anthropic_tool_input_with_usage_is_not_read() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"tool_use","id":"t","name":"report","input":{"usage":{"input_tokens":0,"output_tokens":0}}}],"usage":{"input_tokens":40,"output_tokens":900}}"#;
    assert_any_split(Family::Anthropic, BodyKind::Json, false, body, body, final_usage(Usage::new(40, 0, 900)));
    let mut events = ANTHROPIC_EVENTS.to_vec();
    events[1] = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"report\",\"input\":{\"usage\":{\"output_tokens\":1}}}}\n\n";
    let body = stream(&events, false);
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, &body, &body, final_usage(anthropic_usage(15)));
}

#[test]
fn anthropic_stream_final_only_at_message_stop_after_message_delta() {
    let mut events = ANTHROPIC_EVENTS.to_vec();
    events.remove(6);
    let body = stream(&events, false);
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, &body, &body, partial(Some(anthropic_usage(2))));
}

#[test]
fn anthropic_one_hour_cache_writes() {
    let body = br#"{"type":"message","content":[],"usage":{"input_tokens":3,"cache_creation_input_tokens":5000,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":4000},"output_tokens":9}}"#;
    let usage = Usage::with_cache_writes(5003, 0, CacheWrites { five_minutes: 1000, one_hour: 4000 }, 9);
    assert_any_split(Family::Anthropic, BodyKind::Json, false, body, body, final_usage(usage));
}

#[test]
fn gemini_function_call_args_with_usage_metadata_are_not_read() {
    let body = br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"report","args":{"usageMetadata":{"promptTokenCount":0}}}}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":70,"candidatesTokenCount":5,"toolUsePromptTokenCount":4000,"thoughtsTokenCount":100}}"#;
    assert_any_split(Family::Gemini, BodyKind::Json, false, body, body, final_usage(Usage::new(4070, 0, 105)));
    let none = br#"{"candidates":[],"usageMetadata":null}"#;
    assert_any_split(Family::Gemini, BodyKind::Json, false, none, none, partial(None));
}

#[test]
fn gemini_stream_with_tool_use_prompt_and_a_blocked_prompt() {
    let body = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}],\"usageMetadata\":{\"promptTokenCount\":10,\"toolUsePromptTokenCount\":300,\"candidatesTokenCount\":1}}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":10,\"toolUsePromptTokenCount\":300,\"candidatesTokenCount\":2}}\r\n\r\n";
    assert_any_split(Family::Gemini, BodyKind::EventStream, false, body, body, final_usage(Usage::new(310, 0, 2)));
    let blocked =
        b"data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":12}}\n\n";
    assert_any_split(Family::Gemini, BodyKind::EventStream, false, blocked, blocked, final_usage(Usage::new(12, 0, 0)));
    // A chunk with usage after a finished candidate's (another candidate still going) unmarks it.
    let later = [body.as_slice(), b"data: {\"candidates\":[{\"index\":1}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":3}}\n\n"].concat();
    assert!(!scan(Family::Gemini, BodyKind::EventStream, false, &[&later]).2);
}

#[test]
fn usage_null_is_none_for_every_family() {
    let cases: [(Family, &[u8]); 3] = [
        (Family::OpenAi, br#"{"id":"x","usage":null}"#),
        (Family::Anthropic, br#"{"id":"x","usage":null}"#),
        (Family::Gemini, br#"{"candidates":[],"usageMetadata":null}"#),
    ];
    for (family, body) in cases {
        assert_any_split(family, BodyKind::Json, false, body, body, partial(None));
    }
    let delta_null = b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":null}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    assert_any_split(Family::Anthropic, BodyKind::EventStream, false, delta_null, delta_null, partial(None));
}

#[test]
fn unreadable_usage_is_never_final() {
    for body in [
        br#"{"usage":{"prompt_tokens":-1}}"#.as_slice(),
        br#"{"usage":"lots"}"#,
        br#"{"usage":{"prompt_tokens":5},"usage":{"completion_tokens":1.5}}"#,
    ] {
        assert!(!scan(Family::OpenAi, BodyKind::Json, false, &[body]).2, "{}", String::from_utf8_lossy(body));
    }
    let oversized = format!(r#"{{"usage":{{"prompt_tokens":5,"pad":"{}"}}}}"#, "x".repeat(20_000));
    assert_eq!(scan(Family::OpenAi, BodyKind::Json, false, &[oversized.as_bytes()]).1, None);
    assert!(!scan(Family::OpenAi, BodyKind::Json, false, &[oversized.as_bytes()]).2);
}

#[test]
fn truncated_json_bodies_are_not_final() {
    let body = OPENAI_CHAT_JSON.as_bytes();
    let usage_end = OPENAI_CHAT_JSON.find("\"service_tier\"").unwrap();
    for cut in [usage_end, body.len() - 3] {
        let (_, usage, is_final) = scan(Family::OpenAi, BodyKind::Json, false, &[&body[..cut]]);
        assert_eq!((usage, is_final), (Some(Usage::new(1117, 1024, 46)), false), "cut at {cut}");
    }
}
