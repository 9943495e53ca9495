//! One parse of a request body into what the gateway needs: [`parse`] → [`BodyView`].
//!
//! A visitor walks the top-level members once. The members the gateway reads are deserialised
//! into small typed values; the content it must bound or police (`messages`, `input`,
//! `contents`, `system`, `tools`) into small views of their parts; everything else is skipped
//! without building a JSON tree. Each top-level member is looked up in the route's table
//! ([`members`]) as it goes, and each content part and tool is judged as it is read, into
//! [`Findings`].
//!
//! Members the gateway reads must appear at most once (a duplicate is invalid JSON here, so the
//! gateway and the upstream cannot read different values). The objects it reads inside them
//! (`stream_options`, `generationConfig`, `thinkingConfig`) must be objects: serde's derived
//! readers would also take an array of the members in order, which the gateway could then
//! neither edit nor forward (found by fuzzing). The part views are lenient: a part
//! that is not an object, or content that is a string, is plain text, counted in the body's bytes.
//!
//! Parts judged, per family (a URL image counts like an inline one, at its family's maximum):
//! - OpenAI: `image_url` (chat object or Responses string) → image; any `file_id` or
//!   `item_reference`, or a message's `audio` (a previous answer's) → shared state; `file_url`,
//!   `file_data` (documents billed per page) and `input_audio` → unbounded.
//! - Anthropic: `image` → image, `document` with a `base64` (PDF) or `url` source → unbounded;
//!   any `file` source or `container_upload` → shared state. `tool_result` content and
//!   `content` document sources are judged too.
//! - Gemini: `inlineData` of an `image/*` type → image, of a `text/*` type → text, else
//!   (audio, video, PDF) → unbounded; `fileData` naming the Files API → shared state, any other
//!   URI → unbounded. `functionResponse.parts` are judged too.

use crate::family::Family;
use crate::gateway::members::{self, Refusal, Rule};
use crate::gateway::route::{Endpoint, Route};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Implements `Deserialize` for a type whose derived reader is inherent (`#[serde(remote =
/// "Self")]`) so that it reads a JSON object only, refusing the array of members in order that
/// the derived reader also takes.
macro_rules! object_only {
    ($type:ty) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Members;
                impl<'de> Visitor<'de> for Members {
                    type Value = $type;

                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }

                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$type, A::Error> {
                        <$type>::deserialize(de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(Members)
            }
        }
    };
}

/// What one parse of a body found. `Option<Option<T>>` members: the outer `Some` means present,
/// the inner `None` an explicit `null`.
#[derive(Default)]
pub struct BodyView {
    pub model: Option<Option<String>>,
    pub stream: Option<Option<bool>>,
    pub max_tokens: Option<Option<u64>>,
    pub max_completion_tokens: Option<Option<u64>>,
    pub max_output_tokens: Option<Option<u64>>,
    pub n: Option<Option<u64>>,
    pub best_of: Option<Option<u64>>,
    pub store: Option<Option<bool>>,
    pub stream_options: Option<Option<StreamOptions>>,
    pub generation_config: Option<Option<GenerationConfig>>,
    pub findings: Findings,
}

#[derive(Deserialize)]
#[serde(remote = "Self")]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}
object_only!(StreamOptions);

#[derive(Deserialize)]
#[serde(remote = "Self")]
pub struct GenerationConfig {
    #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
    pub max_output_tokens: Option<u64>,
    #[serde(rename = "candidateCount", alias = "candidate_count")]
    pub candidate_count: Option<u64>,
    #[serde(rename = "thinkingConfig", alias = "thinking_config")]
    pub thinking_config: Option<ThinkingConfig>,
}
object_only!(GenerationConfig);

#[derive(Deserialize)]
#[serde(remote = "Self")]
pub struct ThinkingConfig {
    /// Tokens; `-1` asks for dynamic thinking.
    #[serde(rename = "thinkingBudget", alias = "thinking_budget")]
    pub thinking_budget: Option<i64>,
}
object_only!(ThinkingConfig);

/// What the body's parts and members bring, judged as they were read.
#[derive(Debug, Default)]
pub struct Findings {
    /// The first thing refused to every key.
    pub shared: Option<Refusal>,
    /// The first thing refused to keys with spend caps.
    pub capped: Option<Refusal>,
    /// The first top-level member or tool kind not in the route's tables.
    pub unknown: Option<String>,
    pub images: u64,
    /// Bytes of inline image data (counted as images, not as text).
    pub image_bytes: u64,
    pub tools: u64,
}

impl Findings {
    fn refuse(&mut self, what: impl FnOnce() -> String, rule: Rule) {
        let slot = match rule {
            Rule::Shared(_) => &mut self.shared,
            Rule::Unmetered(_) | Rule::Unbounded(_) => &mut self.capped,
            Rule::Pass | Rule::Rewritten => return,
        };
        if slot.is_none() {
            *slot = Some(Refusal::new(what(), rule));
        }
    }

    fn unknown(&mut self, what: impl FnOnce() -> String) {
        if self.unknown.is_none() {
            self.unknown = Some(what());
        }
    }

    fn image(&mut self, inline_bytes: u64) {
        self.images += 1;
        self.image_bytes += inline_bytes;
    }

    /// Judges a `tools[]` entry: each of its kinds counts as a tool.
    fn judge_tool(&mut self, family: Family, tool: &Tool) {
        match family {
            Family::Gemini => tool.members.iter().for_each(|kind| self.tool(family, kind)),
            _ => self.tool(family, tool.kind.0.as_deref().unwrap_or("custom")),
        }
    }

    fn tool(&mut self, family: Family, kind: &str) {
        self.tools += 1;
        match members::rule(family, members::tools(family), kind) {
            Some(rule) => self.refuse(|| format!("tools: {kind}"), rule),
            None => {
                self.refuse(|| format!("tools: {kind}"), members::tool_rule(family, kind));
                self.unknown(|| format!("tools: {kind}"));
            }
        }
    }

    fn openai_part(&mut self, part: &OpenAiPart) {
        const FILE_IDS: Rule = Rule::Shared("file ids name files shared by every key of the upstream account");
        const DOCUMENTS: Rule =
            Rule::Unbounded("documents and remote files are billed by pages the gateway cannot count");
        if let Some(url) = &part.image_url {
            self.image(url.inline_bytes);
        }
        if part.file_id.0 || part.file.as_ref().is_some_and(|f| f.file_id.0) {
            self.refuse(|| "file_id".to_owned(), FILE_IDS);
        }
        if part.kind.is("item_reference") {
            self.refuse(
                || "item_reference".to_owned(),
                Rule::Shared("stored items are shared by every key of the upstream account"),
            );
        }
        if part.audio.0 {
            self.refuse(
                || "audio".to_owned(),
                Rule::Shared("a previous answer's audio is kept in the upstream account"),
            );
        }
        if part.file_url.0 {
            self.refuse(|| "file_url".to_owned(), DOCUMENTS);
        }
        if part.file_data.0 || part.file.as_ref().is_some_and(|f| f.file_data.0) {
            self.refuse(|| "file_data".to_owned(), DOCUMENTS);
        }
        if part.input_audio.0 {
            self.refuse(
                || "input_audio".to_owned(),
                Rule::Unbounded("audio is billed by a length the gateway cannot measure"),
            );
        }
        for inner in part.content.0.iter().chain(&part.output.0) {
            self.openai_part(inner);
        }
    }

    fn anthropic_block(&mut self, block: &AnthropicBlock) {
        let source = block.source.as_ref();
        let source_kind = source.map(|s| s.kind.0.as_deref().unwrap_or_default()).unwrap_or_default();
        if source_kind == "file" || block.kind.is("container_upload") || block.file_id.0 {
            self.refuse(
                || format!("{}: file", block.kind.0.as_deref().unwrap_or("block")),
                Rule::Shared("file ids name files shared by every key of the upstream account"),
            );
        }
        match (block.kind.0.as_deref(), source_kind) {
            (Some("image"), "base64" | "url") => self.image(source.map_or(0, |s| s.data.0)),
            (Some("document"), "base64" | "url") => self.refuse(
                || format!("document: {source_kind}"),
                Rule::Unbounded("PDF documents are billed by pages the gateway cannot count"),
            ),
            _ => {}
        }
        for inner in block.content.0.iter().chain(source.map_or(&[][..], |s| &s.content.0)) {
            self.anthropic_block(inner);
        }
    }

    fn gemini_part(&mut self, part: &GeminiPart) {
        if let Some(blob) = &part.inline_data {
            let mime = blob.mime_type.0.as_deref().unwrap_or_default();
            if mime.starts_with("image/") {
                self.image(blob.data.0);
            } else if !mime.starts_with("text/") {
                self.refuse(
                    || format!("inlineData: {mime}"),
                    Rule::Unbounded(
                        "audio, video and documents are billed by a length or page count the gateway cannot measure",
                    ),
                );
            }
        }
        if let Some(file) = &part.file_data {
            let uri = file.file_uri.0.as_deref().unwrap_or_default();
            if uri.starts_with("files/") || uri.contains("generativelanguage.googleapis.com") {
                self.refuse(
                    || "fileData".to_owned(),
                    Rule::Shared("uploaded files are shared by every key of the upstream account"),
                );
            } else {
                self.refuse(
                    || "fileData".to_owned(),
                    Rule::Unbounded("a file by URI has a size the gateway cannot bound"),
                );
            }
        }
        if let Some(response) = &part.function_response {
            response.parts.0.iter().for_each(|inner| self.gemini_part(inner));
        }
    }
}

/// Parses `body` (a JSON object) for `route`.
pub fn parse(route: &Route, body: &str) -> Result<BodyView, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let view = (&mut deserializer).deserialize_map(Body { route })?;
    deserializer.end()?;
    Ok(view)
}

struct Body<'r> {
    route: &'r Route,
}

impl<'de> Visitor<'de> for Body<'_> {
    type Value = BodyView;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BodyView, A::Error> {
        let (family, endpoint) = (self.route.family, self.route.endpoint);
        let table = members::members(family, endpoint);
        let mut view = BodyView::default();
        while let Some(Key(key)) = map.next_key()? {
            let key = &*key;
            let is = |known: &str| members::same_name(family, known, key);
            let rule = table.and_then(|table| members::rule(family, table, key));
            if table.is_some() && rule.is_none() {
                view.findings.unknown(|| key.to_owned());
            }
            let findings = &mut view.findings;
            if is("model") {
                once(&mut view.model, map.next_value()?, "model")?;
            } else if is("stream") {
                once(&mut view.stream, map.next_value()?, "stream")?;
            } else if is("max_tokens") {
                once(&mut view.max_tokens, map.next_value()?, "max_tokens")?;
            } else if is("max_completion_tokens") {
                once(&mut view.max_completion_tokens, map.next_value()?, "max_completion_tokens")?;
            } else if is("max_output_tokens") {
                once(&mut view.max_output_tokens, map.next_value()?, "max_output_tokens")?;
            } else if is("n") {
                once(&mut view.n, map.next_value()?, "n")?;
            } else if is("best_of") {
                once(&mut view.best_of, map.next_value()?, "best_of")?;
            } else if is("stream_options") {
                once(&mut view.stream_options, map.next_value()?, "stream_options")?;
            } else if family == Family::Gemini && is("generationConfig") {
                once(&mut view.generation_config, map.next_value()?, "generationConfig")?;
            } else if family == Family::OpenAi && is("store") {
                let store: Option<bool> = map.next_value()?;
                if store == Some(true) {
                    findings.refuse(|| "store".to_owned(), rule.unwrap_or(Rule::Pass));
                }
                once(&mut view.store, store, "store")?;
            } else if let Some(rule @ (Rule::Shared(_) | Rule::Unmetered(_) | Rule::Unbounded(_))) = rule {
                if map.next_value::<Presence>()?.0 {
                    findings.refuse(|| key.to_owned(), rule);
                }
            } else if is("tools") {
                map.next_value_seed(each(|tool: Tool| findings.judge_tool(family, &tool)))?;
            } else if family == Family::OpenAi && (is("messages") || (endpoint == Endpoint::Responses && is("input"))) {
                map.next_value_seed(each(|part: OpenAiPart| findings.openai_part(&part)))?;
            } else if family == Family::Anthropic && (is("messages") || is("system")) {
                map.next_value_seed(each(|block: AnthropicBlock| findings.anthropic_block(&block)))?;
            } else if family == Family::Gemini && is("contents") {
                map.next_value_seed(each(|content: GeminiContent| {
                    content.parts.0.iter().for_each(|part| findings.gemini_part(part));
                }))?;
            } else if family == Family::Gemini && is("systemInstruction") {
                if let Some(content) = map.next_value::<Option<GeminiContent>>()? {
                    content.parts.0.iter().for_each(|part| findings.gemini_part(part));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(view)
    }
}

fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::custom(format_args!("duplicate field `{name}`")));
    }
    Ok(())
}

/// A member name: borrowed from the body, owned only when serde_json must unescape it.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(name.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A `tools[]` entry: OpenAI and Anthropic name its kind in `type` (an Anthropic tool without
/// one is a client tool); a Gemini tool object's set members are its kinds
/// (`functionDeclarations`, `googleSearch`, …).
struct Tool<'de> {
    kind: Tag,
    members: Vec<Cow<'de, str>>,
}

impl<'de> Deserialize<'de> for Tool<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tool<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tool<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tool object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tool<'de>, A::Error> {
                let (mut kind, mut members) = (None, Vec::new());
                while let Some(Key(key)) = map.next_key()? {
                    if key == "type" {
                        once(&mut kind, map.next_value::<Tag>()?, "type")?;
                    } else if map.next_value::<Presence>()?.0 {
                        members.push(key);
                    }
                }
                Ok(Tool { kind: kind.unwrap_or_default(), members })
            }
        }
        d.deserialize_map(V)
    }
}

/// An OpenAI message, Responses input item or content part: only what is judged.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenAiPart {
    #[serde(rename = "type")]
    kind: Tag,
    image_url: Option<ImageUrl>,
    file_id: Presence,
    file_url: Presence,
    file_data: Presence,
    file: Option<OpenAiFile>,
    input_audio: Presence,
    audio: Presence,
    content: Parts<OpenAiPart>,
    output: Parts<OpenAiPart>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenAiFile {
    file_id: Presence,
    file_data: Presence,
}

/// An Anthropic message or content block.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicBlock {
    #[serde(rename = "type")]
    kind: Tag,
    source: Option<AnthropicSource>,
    file_id: Presence,
    content: Parts<AnthropicBlock>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicSource {
    #[serde(rename = "type")]
    kind: Tag,
    data: Length,
    content: Parts<AnthropicBlock>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GeminiContent {
    parts: Parts<GeminiPart>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GeminiPart {
    #[serde(rename = "inlineData", alias = "inline_data")]
    inline_data: Option<GeminiBlob>,
    #[serde(rename = "fileData", alias = "file_data")]
    file_data: Option<GeminiFile>,
    #[serde(rename = "functionResponse", alias = "function_response")]
    function_response: Option<GeminiContent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GeminiBlob {
    #[serde(rename = "mimeType", alias = "mime_type")]
    mime_type: Tag,
    data: Length,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GeminiFile {
    #[serde(rename = "fileUri", alias = "file_uri")]
    file_uri: Tag,
}

/// Implements the scalar and container `visit_*` methods of a lenient visitor: a value of
/// another shape than the one it reads is skipped and yields `$other`.
macro_rules! lenient_visits {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// Drains a map or sequence that is skipped.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Whether a value is *set*: anything but `null` or `false`.
#[derive(Default, Clone, Copy)]
struct Presence(bool);

impl<'de> Deserialize<'de> for Presence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Presence, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Presence;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, set: bool) -> Result<Presence, E> {
                Ok(Presence(set))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Presence, E> {
                Ok(Presence(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Presence, E> {
                Ok(Presence(true))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Presence, E> {
                Ok(Presence(true))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Presence, E> {
                Ok(Presence(true))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Presence, E> {
                Ok(Presence(true))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Presence, A::Error> {
                skip_map(map).map(|()| Presence(true))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Presence, A::Error> {
                skip_seq(seq).map(|()| Presence(true))
            }
        }
        d.deserialize_any(V)
    }
}

/// A short string member (`type`, `mimeType`, `fileUri`); `None` when it is not a string.
#[derive(Default)]
struct Tag(Option<String>);

impl Tag {
    fn is(&self, value: &str) -> bool {
        self.0.as_deref() == Some(value)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            lenient_visits!(Tag(None));
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Tag, E> {
                Ok(Tag(Some(value.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Tag, A::Error> {
                skip_map(map).map(|()| Tag(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Tag, A::Error> {
                skip_seq(seq).map(|()| Tag(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The length in bytes of a string member (inline media data), 0 when it is not a string.
#[derive(Default)]
struct Length(u64);

impl<'de> Deserialize<'de> for Length {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Length, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Length;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            lenient_visits!(Length(0));
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Length, E> {
                Ok(Length(value.len() as u64))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Length, A::Error> {
                skip_map(map).map(|()| Length(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Length, A::Error> {
                skip_seq(seq).map(|()| Length(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// An OpenAI image: a `data:` URL or a remote URL, as a string (Responses) or `{"url": …}`
/// (chat). Its inline bytes are those of a `data:` URL.
struct ImageUrl {
    inline_bytes: u64,
}

impl<'de> Deserialize<'de> for ImageUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ImageUrl, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImageUrl;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an image URL")
            }
            lenient_visits!(ImageUrl { inline_bytes: 0 });
            fn visit_str<E: de::Error>(self, url: &str) -> Result<ImageUrl, E> {
                Ok(ImageUrl { inline_bytes: if url.starts_with("data:") { url.len() as u64 } else { 0 } })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ImageUrl, A::Error> {
                let mut url = None;
                while let Some(Key(key)) = map.next_key()? {
                    if key == "url" {
                        once(&mut url, map.next_value::<ImageUrl>()?, "url")?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(url.unwrap_or(ImageUrl { inline_bytes: 0 }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ImageUrl, A::Error> {
                skip_seq(seq).map(|()| ImageUrl { inline_bytes: 0 })
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of parts or items, read with [`each`].
struct Parts<T>(Vec<T>);

impl<T> Default for Parts<T> {
    fn default() -> Self {
        Parts(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Parts<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Parts<T>, D::Error> {
        let mut parts = Vec::new();
        each(|part| parts.push(part)).deserialize(d)?;
        Ok(Parts(parts))
    }
}

/// Reads a list of parts or items, handing each to `judge` as it is read, so the list is never
/// collected. Content that is not a list (a string, `null`) has no parts to judge, and list
/// members that are not objects are skipped.
fn each<'de, T: Deserialize<'de>>(judge: impl FnMut(T)) -> impl DeserializeSeed<'de, Value = ()> {
    Each(judge, PhantomData)
}

struct Each<T, F>(F, PhantomData<T>);

impl<'de, T: Deserialize<'de>, F: FnMut(T)> DeserializeSeed<'de> for Each<T, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(T)> Visitor<'de> for Each<T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of parts")
    }
    lenient_visits!(());
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        skip_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(ObjectOnly(part)) = seq.next_element::<ObjectOnly<T>>()? {
            part.into_iter().for_each(&mut self.0);
        }
        Ok(())
    }
}

/// A list member: read as `T` when it is an object, else skipped.
struct ObjectOnly<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ObjectOnly<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a part")
            }
            lenient_visits!(ObjectOnly(None));
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ObjectOnly<T>, E> {
                Ok(ObjectOnly(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectOnly<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|part| ObjectOnly(Some(part)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ObjectOnly<T>, A::Error> {
                skip_seq(seq).map(|()| ObjectOnly(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
