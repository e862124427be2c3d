// SseFramer (src/sources/remote.ts): SSE text in chunks split anywhere → event data, with oversized events skipped
// whole. Pure: every split is chosen by the test, so none depends on how TCP happens to cut a stream.
import { describe, expect, it } from 'vitest';
import { SseFramer } from '../src/sources/remote.js';

const LIMIT = 64;
/** Comfortably past LIMIT plus the framer's 4 KiB headroom for `data: ` prefixes. */
const BIG = 6000;

function run(chunks: string[], limit = LIMIT): { data: string[]; oversized: number } {
  const data: string[] = [];
  let oversized = 0;
  const framer = new SseFramer(limit, (d) => data.push(d), () => oversized++);
  for (const c of chunks) framer.feed(c);
  return { data, oversized };
}

/**
 * Ways of cutting `text`: whole, into single characters, and into two chunks at every position that is not deep inside
 * a run of one repeated character (there, every 499th position).
 */
function splits(text: string): string[][] {
  const out: string[][] = [[text], [...text]];
  for (let i = 1; i < text.length; i++) {
    const inRun = text.slice(Math.max(0, i - 3), i + 3) === text[i]!.repeat(Math.min(6, text.length - Math.max(0, i - 3)));
    if (!inRun || i % 499 === 0) out.push([text.slice(0, i), text.slice(i)]);
  }
  return out;
}
const pieces = (text: string, n: number) => text.match(new RegExp(`[\\s\\S]{1,${n}}`, 'g'))!;

describe('SseFramer', () => {
  it('gives the same events however the text is split: LF, CRLF, CR, multi-line data, comments, [DONE]', () => {
    const text = ': hello\n\ndata: {"a":1}\n\ndata: {"b":\r\ndata: 2}\r\n\r\nevent: x\rdata: "cr"\r\rdata: [DONE]\n\ndata: 3\n\n';
    for (const chunks of splits(text)) {
      expect(run(chunks)).toEqual({ data: ['{"a":1}', '{"b":\n2}', '"cr"', '3'], oversized: 0 });
      // empty chunks (a TextDecoder holding half a multi-byte character) change nothing
      expect(run(chunks.flatMap((c) => ['', c, '']))).toEqual({ data: ['{"a":1}', '{"b":\n2}', '"cr"', '3'], oversized: 0 });
    }
  });

  it('skips a single-line event over the limit, counted once, and parses on', () => {
    const big = `data: ${'x'.repeat(BIG * 3)}\n\n`;
    const text = `data: 1\n\n${big}data: 2\n\n`;
    for (const chunks of [...splits(text), pieces(text, 50), pieces(text, 7)]) {
      expect(run(chunks)).toEqual({ data: ['1', '2'], oversized: 1 });
    }
  });

  it('skips a multi-line event over the limit whole: its later data lines are not events of their own', () => {
    const line = `data: ${'y'.repeat(BIG / 2)}`;
    for (const eol of ['\n', '\r\n', '\r']) {
      // (the closing comment: a CR at the very end is held back until the parser sees what follows it)
      const text = `data: 1${eol}${eol}${[line, line, line, 'data: tail'].join(eol)}${eol}${eol}data: 2${eol}${eol}: end${eol}`;
      for (const chunks of splits(text)) {
        expect(run(chunks), JSON.stringify({ eol, chunks: chunks.map((c) => c.length) })).toEqual({ data: ['1', '2'], oversized: 1 });
      }
      expect(run(pieces(text, 101).flatMap((c) => [c, '']))).toEqual({ data: ['1', '2'], oversized: 1 });
    }
  });

  it('skips an event whose many small lines add up past the limit', () => {
    const lines = Array.from({ length: 1500 }, (_, i) => `data: ${i}`).join('\n');
    const text = `${lines}\n\ndata: after\n\n`;
    for (const chunks of [[text], pieces(text, 9), pieces(text, 1000)]) {
      expect(run(chunks)).toEqual({ data: ['after'], oversized: 1 });
    }
  });

  it('counts consecutive oversized events one each', () => {
    const big = (c: string) => `data: ${c.repeat(BIG)}\ndata: ${c}\n\n`;
    const text = `${big('a')}${big('b')}${big('c')}data: ok\n\n`;
    for (const chunks of [[text], pieces(text, 13), pieces(text, 4096)]) {
      expect(run(chunks)).toEqual({ data: ['ok'], oversized: 3 });
    }
  });
});
