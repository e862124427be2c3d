// Test support: a small Server-Sent Events client over node:http that keeps every frame (ids, event types, parsed
// data) and comments, for assertions on what /api/events really sends.
import { type IncomingMessage, request } from 'node:http';

export interface SseFrame {
  id?: string;
  event: string;
  data: unknown;
}

export interface SseClient {
  readonly status: number;
  readonly frames: SseFrame[];
  readonly comments: string[];
  readonly ended: boolean;
  /** Frames with an `id` and an event type other than snapshot. */
  events(): SseFrame[];
  lastId(): string | undefined;
  close(): void;
}

export function seq(id: string | undefined): number {
  return Number(id?.split('-')[1] ?? Number.NaN);
}

/** Connects and resolves once the response headers arrived (for any status). */
export function connectSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const frames: SseFrame[] = [];
    const comments: string[] = [];
    let ended = false;
    let res: IncomingMessage | undefined;
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (r) => {
      res = r;
      r.setEncoding('utf8');
      let buf = '';
      r.on('data', (chunk: string) => {
        buf += chunk;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const f: { id?: string; event: string; data: string[] } = { event: 'message', data: [] };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) f.id = line.slice(4);
            else if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('data: ')) f.data.push(line.slice(6));
          }
          if (f.data.length > 0) {
            const frame: SseFrame = { event: f.event, data: JSON.parse(f.data.join('\n')) };
            if (f.id !== undefined) frame.id = f.id;
            frames.push(frame);
          }
        }
      });
      r.on('end', () => (ended = true));
      r.on('close', () => (ended = true));
      r.on('error', () => (ended = true));
      resolve({
        status: r.statusCode ?? 0,
        frames,
        comments,
        get ended() {
          return ended;
        },
        events: () => frames.filter((f) => f.event !== 'snapshot' && f.id !== undefined),
        lastId: () => frames.at(-1)?.id,
        close: () => {
          req.destroy();
          res?.destroy();
        },
      });
    });
    req.on('error', (e) => (res ? (ended = true) : reject(e)));
    req.end();
  });
}
