// The OTLP/protobuf encoding of finished spans: ReadableSpan[] → ExportTraceServiceRequest bytes, for the
// `http/protobuf` traces exporter (telemetry.ts) and the bench's exporter.
//
// Owns: the bytes. Must not: send, retry, compress or read OTEL_* variables (the SDK's exporter machinery does that;
// telemetry.ts assembles it around this serializer exactly as OTLPTraceExporter does around ProtobufTraceSerializer).
//
// Why it exists: ProtobufTraceSerializer (@opentelemetry/otlp-transformer 0.223.0, pinned) walks every request twice
// (a size estimate, then the write), copies each string a char at a time after an ASCII scan, allocates a Uint8Array
// per trace/span id and shifts every message longer than 127 bytes to widen its length prefix. This encoder writes
// the message back to front into one reused buffer — each length is known when its prefix is written — so it walks
// the spans once, writes ids in place and hands long strings to Buffer.write.
//
// A fast path (fast-paths.ts `otlp_encoder`): it mirrors a pinned library's private encoding; docs/upgrading.md says
// what to check when @opentelemetry/otlp-transformer moves.
//
// Contract: the output is byte-identical to ProtobufTraceSerializer.serializeRequest for the same spans (same grouping
// by resource then scope object, in first-seen order; same field order; same omitted defaults; numbers as int_value
// when the SDK writes int_value; see test/otlp-encode.test.ts). Anything it does not expect (a non-string name, a
// count that is not a uint32, an odd-length id, …) throws inside, and that request is handed to
// ProtobufTraceSerializer instead, which then decides what such a span encodes to (or throws, as it would have).

import type { HrTime } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

type Serializer = typeof ProtobufTraceSerializer;

const INITIAL_SIZE = 64 * 1024;
/** A buffer grown past this by one large request is not kept for the next. */
const MAX_KEPT_SIZE = 4 * 1024 * 1024;
/** Strings up to this many UTF-16 units are copied in JS; longer ones go to Buffer.write (one native call). */
const SHORT_STRING = 48;

// Back-to-front writer: bytes go to buf[pos - 1], buf[pos - 2], …; the message is buf[pos .. buf.length).
// "Marks" are distances from the end (buf.length - pos), which growing the buffer keeps.
let buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_SIZE);
let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
let pos = buf.length;

class Unsupported extends Error {}

function unsupported(what: string): never {
  throw new Unsupported(what);
}

function grow(n: number): void {
  const used = buf.length - pos;
  let size = buf.length * 2;
  while (size - used < n) size *= 2;
  const next = Buffer.allocUnsafeSlow(size);
  buf.copy(next, size - used, pos);
  buf = next;
  view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  pos = size - used;
}

function room(n: number): void {
  if (pos < n) grow(n);
}

function written(): number {
  return buf.length - pos;
}

/** A uint32 varint (v already a uint32). */
function u32(v: number): void {
  room(6); // and one for the tag the caller writes next
  if (v < 0x80) {
    buf[--pos] = v;
  } else if (v < 0x4000) {
    buf[--pos] = v >>> 7;
    buf[--pos] = (v & 0x7f) | 0x80;
  } else if (v < 0x200000) {
    buf[--pos] = v >>> 14;
    buf[--pos] = ((v >>> 7) & 0x7f) | 0x80;
    buf[--pos] = (v & 0x7f) | 0x80;
  } else if (v < 0x10000000) {
    buf[--pos] = v >>> 21;
    buf[--pos] = ((v >>> 14) & 0x7f) | 0x80;
    buf[--pos] = ((v >>> 7) & 0x7f) | 0x80;
    buf[--pos] = (v & 0x7f) | 0x80;
  } else {
    buf[--pos] = v >>> 28;
    buf[--pos] = ((v >>> 21) & 0x7f) | 0x80;
    buf[--pos] = ((v >>> 14) & 0x7f) | 0x80;
    buf[--pos] = ((v >>> 7) & 0x7f) | 0x80;
    buf[--pos] = (v & 0x7f) | 0x80;
  }
}

/** The length prefix of the message written since `mark`. */
function lengthSince(mark: number): void {
  u32(written() - mark);
}

/** A count the SDK writes with writeVarint: only a uint32 here (anything else: the SDK's own encoding). */
function count(v: unknown): void {
  if (typeof v !== 'number' || v >>> 0 !== v) unsupported('count');
  u32(v);
}

const varintScratch = new Uint8Array(10);

/** ProtobufWriter.writeVarint for an integer outside [0, 2^32): the same arithmetic, written back to front. */
function varint64(value: number): void {
  let low: number;
  let high: number;
  if (value >= 0) {
    low = value >>> 0;
    high = (value / 0x100000000) >>> 0;
  } else {
    const abs = Math.abs(value);
    low = abs >>> 0;
    high = (abs / 0x100000000) >>> 0;
    low = ~low >>> 0;
    high = ~high >>> 0;
    low = (low + 1) >>> 0;
    if (low === 0) high = (high + 1) >>> 0;
  }
  let n = 0;
  while (high > 0 || low > 0x7f) {
    varintScratch[n++] = (low & 0x7f) | 0x80;
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high >>>= 7;
  }
  varintScratch[n++] = low & 0x7f;
  room(n);
  while (n > 0) buf[--pos] = varintScratch[--n]!;
}

/** A string field's bytes and length (the tag is the caller's). UTF-8, unpaired surrogates as U+FFFD, as TextEncoder. */
function str(s: unknown): void {
  if (typeof s !== 'string') unsupported('string');
  const n = s.length;
  room(3 * n + 6); // UTF-8 is at most 3 bytes per UTF-16 unit; then length and tag
  if (n <= SHORT_STRING) {
    const start = pos - n;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      buf[start + i] = c;
    }
    if (i === n) {
      pos = start;
      u32(n);
      return;
    }
  }
  const bytes = Buffer.byteLength(s, 'utf8');
  pos -= bytes;
  buf.write(s, pos, bytes, 'utf8');
  u32(bytes);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55;
}

/** A trace or span id's bytes and length: hexToBinary's arithmetic, written in place. */
function hexId(s: unknown): void {
  if (typeof s !== 'string' || (s.length & 1) !== 0) unsupported('id');
  const m = s.length >>> 1;
  room(m + 6);
  pos -= m;
  for (let i = 0; i < m; i++) buf[pos + i] = (hexValue(s.charCodeAt(2 * i)) << 4) | hexValue(s.charCodeAt(2 * i + 1));
  u32(m);
}

function fixed32(v: number): void {
  room(4);
  v = v >>> 0;
  buf[--pos] = (v >>> 24) & 0xff;
  buf[--pos] = (v >>> 16) & 0xff;
  buf[--pos] = (v >>> 8) & 0xff;
  buf[--pos] = v & 0xff;
}

/** writeHrTimeAsFixed64 (common-serializer.js): the same split arithmetic, then 8 little-endian bytes. */
function hrTime(t: HrTime): void {
  const seconds = t[0];
  const nanos = t[1];
  const nanosPerSecond = 1000000000;
  const secondsLower16Bits = seconds & 0xffff;
  const secondsUpperBits = (seconds / 0x10000) >>> 0;
  const nanosFromLower16Bits = secondsLower16Bits * nanosPerSecond;
  const nanosFromUpperBits = secondsUpperBits * nanosPerSecond;
  const lower16ContributionLow32 = nanosFromLower16Bits >>> 0;
  const lower16ContributionHigh32 = Math.floor(nanosFromLower16Bits / 0x100000000);
  const upperBitsContributionLow32 = ((nanosFromUpperBits & 0xffff) * 0x10000) >>> 0;
  const upperBitsContributionHigh32 = (nanosFromUpperBits / 0x10000) >>> 0;
  const low32WithCarry = lower16ContributionLow32 + upperBitsContributionLow32 + nanos;
  const totalLow = low32WithCarry >>> 0;
  const carry = Math.floor(low32WithCarry / 0x100000000);
  const totalHigh = (lower16ContributionHigh32 + upperBitsContributionHigh32 + carry) >>> 0;
  fixed32(totalHigh);
  fixed32(totalLow);
}

const MIN_64_BIT_INT = -(2 ** 63);
const MAX_64_BIT_INT = 2 ** 63;

/** The contents of an AnyValue (writeAnyValue): one field, or none for a type the SDK does not encode. */
function anyValue(value: unknown): void {
  const t = typeof value;
  if (t === 'string') {
    str(value);
    buf[--pos] = 0x0a; // string_value (1, LEN) — str() left room for the tag
  } else if (t === 'boolean') {
    room(2);
    buf[--pos] = value ? 1 : 0;
    buf[--pos] = 0x10; // bool_value (2, VARINT)
  } else if (t === 'number') {
    const v = value as number;
    if (Number.isInteger(v) && v >= MIN_64_BIT_INT && v < MAX_64_BIT_INT) {
      if (v >= 0 && v <= 0xffffffff) u32(v >>> 0);
      else varint64(v);
      room(1);
      buf[--pos] = 0x18; // int_value (3, VARINT)
    } else {
      room(9);
      pos -= 8;
      view.setFloat64(pos, v, true);
      buf[--pos] = 0x21; // double_value (4, I64)
    }
  } else if (value instanceof Uint8Array) {
    room(value.length + 6);
    pos -= value.length;
    buf.set(value, pos);
    u32(value.length);
    buf[--pos] = 0x3a; // bytes_value (7, LEN)
  } else if (Array.isArray(value)) {
    const mark = written();
    for (let i = value.length - 1; i >= 0; i--) {
      const item = written();
      anyValue(value[i]);
      lengthSince(item);
      buf[--pos] = 0x0a; // ArrayValue.values (1, LEN)
    }
    lengthSince(mark);
    buf[--pos] = 0x2a; // array_value (5, LEN)
  } else if (t === 'object' && value != null) {
    const mark = written();
    keyValues(value as Record<string, unknown>, 0x0a); // KeyValueList.values (1, LEN)
    lengthSince(mark);
    buf[--pos] = 0x32; // kvlist_value (6, LEN)
  }
  // anything else: no field, as the SDK
}

/**
 * KeyValue.key fields (tag, length, UTF-8) by key: attribute keys repeat on every span. Bounded; the same bytes str()
 * writes (Buffer's UTF-8, as str() falls back to, equals its ASCII copy for ASCII keys).
 */
const keyFields = new Map<string, Uint8Array>();
const MAX_KEY_FIELDS = 2048;
const MAX_CACHED_KEY = 256;

function keyField(key: string): Uint8Array {
  const utf8 = Buffer.from(key, 'utf8');
  const n = utf8.length;
  const head: number[] = [0x0a];
  let v = n;
  while (v > 0x7f) {
    head.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  head.push(v);
  const field = new Uint8Array(head.length + n);
  field.set(head);
  field.set(utf8, head.length);
  return field;
}

/** Repeated KeyValue fields (writeAttributes / a kvlist): own enumerable string keys, the order for-in + hasOwnProperty visits. */
function keyValues(obj: Record<string, unknown>, tag: number): void {
  if (typeof obj !== 'object') unsupported('attributes');
  const keys = Object.keys(obj);
  for (let i = keys.length - 1; i >= 0; i--) {
    const key = keys[i]!;
    const kv = written();
    const value = written();
    anyValue(obj[key]);
    lengthSince(value);
    room(1);
    buf[--pos] = 0x12; // KeyValue.value (2, LEN)
    // KeyValue.key (1, LEN)
    let field = keyFields.get(key);
    if (field === undefined && key.length <= MAX_CACHED_KEY) {
      field = keyField(key);
      if (keyFields.size < MAX_KEY_FIELDS) keyFields.set(key, field);
    }
    if (field !== undefined) {
      const n = field.length;
      room(n + 6);
      pos -= n;
      for (let j = 0; j < n; j++) buf[pos + j] = field[j]!;
    } else {
      str(key);
      buf[--pos] = 0x0a;
    }
    lengthSince(kv);
    room(1);
    buf[--pos] = tag;
  }
}

/** Span.flags / Link.flags (buildSpanFlags): never 0, so always written. */
function spanFlags(traceFlags: number, isRemote: unknown): number {
  let flags = (traceFlags & 0xff) | 0x100;
  if (isRemote) flags |= 0x200;
  return flags;
}

function span(s: ReadableSpan): void {
  const ctx = s.spanContext();
  const parent = s.parentSpanContext;
  // flags (16, I32)
  fixed32(spanFlags(ctx.traceFlags, parent?.isRemote));
  room(2);
  buf[--pos] = 0x01;
  buf[--pos] = 0x85;
  // status (15, LEN)
  const status = s.status;
  const statusMark = written();
  count(status.code);
  buf[--pos] = 0x18; // code (3, VARINT), always written
  if (status.message) {
    str(status.message);
    buf[--pos] = 0x12; // message (2, LEN)
  }
  lengthSince(statusMark);
  room(1);
  buf[--pos] = 0x7a;
  // dropped_links_count (14)
  count(s.droppedLinksCount);
  buf[--pos] = 0x70;
  // links (13)
  const links = s.links;
  if (!Array.isArray(links)) unsupported('links');
  for (let i = links.length - 1; i >= 0; i--) {
    const link = links[i]!;
    const lc = link.context;
    const mark = written();
    fixed32(spanFlags(lc.traceFlags, lc.isRemote));
    room(1);
    buf[--pos] = 0x35; // flags (6, I32)
    count(link.droppedAttributesCount || 0);
    buf[--pos] = 0x28; // dropped_attributes_count (5)
    if (link.attributes) keyValues(link.attributes, 0x22); // attributes (4)
    const ts = lc.traceState?.serialize();
    if (ts) {
      str(ts);
      buf[--pos] = 0x1a; // trace_state (3)
    }
    hexId(lc.spanId);
    buf[--pos] = 0x12; // span_id (2)
    hexId(lc.traceId);
    buf[--pos] = 0x0a; // trace_id (1)
    lengthSince(mark);
    room(1);
    buf[--pos] = 0x6a;
  }
  // dropped_events_count (12)
  count(s.droppedEventsCount);
  buf[--pos] = 0x60;
  // events (11)
  const events = s.events;
  if (!Array.isArray(events)) unsupported('events');
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    const mark = written();
    count(e.droppedAttributesCount || 0);
    buf[--pos] = 0x20; // dropped_attributes_count (4)
    if (e.attributes) keyValues(e.attributes, 0x1a); // attributes (3)
    str(e.name);
    buf[--pos] = 0x12; // name (2)
    hrTime(e.time);
    room(1);
    buf[--pos] = 0x09; // time_unix_nano (1, I64)
    lengthSince(mark);
    room(1);
    buf[--pos] = 0x5a;
  }
  // dropped_attributes_count (10)
  count(s.droppedAttributesCount);
  buf[--pos] = 0x50;
  // attributes (9)
  if (s.attributes) keyValues(s.attributes, 0x4a);
  // end_time_unix_nano (8, I64), start_time_unix_nano (7, I64)
  hrTime(s.endTime);
  room(1);
  buf[--pos] = 0x41;
  hrTime(s.startTime);
  room(1);
  buf[--pos] = 0x39;
  // kind (6), offset by one; 0 omitted
  const kind = s.kind == null ? 0 : s.kind + 1;
  if (kind !== 0) {
    count(kind);
    buf[--pos] = 0x30;
  }
  // name (5)
  str(s.name);
  buf[--pos] = 0x2a;
  // parent_span_id (4), omitted when empty
  if (parent?.spanId) {
    hexId(parent.spanId);
    buf[--pos] = 0x22;
  }
  // trace_state (3), omitted when empty
  const ts = ctx.traceState?.serialize();
  if (ts) {
    str(ts);
    buf[--pos] = 0x1a;
  }
  hexId(ctx.spanId);
  buf[--pos] = 0x12; // span_id (2)
  hexId(ctx.traceId);
  buf[--pos] = 0x0a; // trace_id (1)
}

type Scope = ReadableSpan['instrumentationScope'];
type Resource = ReadableSpan['resource'];

function scopeSpans(scope: Scope, spans: ReadableSpan[]): void {
  // schema_url (3), omitted when empty
  if (scope.schemaUrl) {
    str(scope.schemaUrl);
    buf[--pos] = 0x1a;
  }
  // spans (2)
  for (let i = spans.length - 1; i >= 0; i--) {
    const mark = written();
    span(spans[i]!);
    lengthSince(mark);
    room(1);
    buf[--pos] = 0x12;
  }
  // scope (1): writeInstrumentationScope
  const mark = written();
  // The SDK also writes attributes (3) and dropped_attributes_count (4) when a scope object carries them.
  const extra = scope as Scope & { attributes?: Record<string, unknown>; droppedAttributesCount?: number };
  if (extra.droppedAttributesCount) {
    count(extra.droppedAttributesCount);
    buf[--pos] = 0x20;
  }
  if (extra.attributes) keyValues(extra.attributes, 0x1a);
  if (scope.version) {
    str(scope.version);
    buf[--pos] = 0x12;
  }
  str(scope.name);
  buf[--pos] = 0x0a;
  lengthSince(mark);
  room(1);
  buf[--pos] = 0x0a;
}

function resourceSpans(resource: Resource, scopes: Map<Scope, ReadableSpan[]>): void {
  // schema_url (3), omitted when empty
  if (resource.schemaUrl) {
    str(resource.schemaUrl);
    buf[--pos] = 0x1a;
  }
  // scope_spans (2), in first-seen order
  const groups = [...scopes.values()];
  for (let i = groups.length - 1; i >= 0; i--) {
    const spans = groups[i]!;
    const mark = written();
    scopeSpans(spans[0]!.instrumentationScope, spans);
    lengthSince(mark);
    room(1);
    buf[--pos] = 0x12;
  }
  // resource (1): writeResource — attributes, then dropped_attributes_count 0 (always written)
  const mark = written();
  room(2);
  buf[--pos] = 0x00;
  buf[--pos] = 0x10;
  const attributes = resource.attributes;
  if (attributes) keyValues(attributes, 0x0a);
  lengthSince(mark);
  room(1);
  buf[--pos] = 0x0a;
}

/** An ExportTraceServiceRequest; throws Unsupported (or whatever a span's own getters throw) for anything unexpected. */
function encode(spans: ReadableSpan[]): Uint8Array {
  // Grouped as createResourceMap does: by resource object, then scope object, each in first-seen order.
  const resources = new Map<Resource, Map<Scope, ReadableSpan[]>>();
  for (const s of spans) {
    let scopes = resources.get(s.resource);
    if (!scopes) {
      scopes = new Map();
      resources.set(s.resource, scopes);
    }
    let group = scopes.get(s.instrumentationScope);
    if (!group) {
      group = [];
      scopes.set(s.instrumentationScope, group);
    }
    group.push(s);
  }
  pos = buf.length;
  const entries = [...resources];
  for (let i = entries.length - 1; i >= 0; i--) {
    const [resource, scopes] = entries[i]!;
    const mark = written();
    resourceSpans(resource, scopes);
    lengthSince(mark);
    room(1);
    buf[--pos] = 0x0a; // resource_spans (1, LEN)
  }
  const out = new Uint8Array(written());
  out.set(buf.subarray(pos));
  if (buf.length > MAX_KEPT_SIZE) {
    buf = Buffer.allocUnsafeSlow(INITIAL_SIZE);
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  pos = buf.length;
  return out;
}

/** How many requests fell back to ProtobufTraceSerializer, all serializers together (tests read it). */
export const encodeStats = { fallbacks: 0 };

/**
 * A drop-in for ProtobufTraceSerializer (the ISerializer an OTLP exporter delegate takes): the same request bytes,
 * faster; the same response decoding (the SDK's). `onFallback` hears of each request handed to the SDK's serializer
 * (the bridge counts them in mastra_task_bridge_fast_path_fallbacks_total{path="otlp_encoder"}).
 */
export function createOtlpTraceSerializer(onFallback?: () => void): Serializer {
  return {
    serializeRequest(spans: ReadableSpan[]): Uint8Array | undefined {
      try {
        return encode(spans);
      } catch {
        pos = buf.length;
        encodeStats.fallbacks++;
        onFallback?.();
        return ProtobufTraceSerializer.serializeRequest(spans);
      }
    },
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
}

export const OtlpTraceSerializer: Serializer = createOtlpTraceSerializer();
