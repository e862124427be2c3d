/**
 * A scripted, network-free language model for the demo agents.
 *
 * The user prompt carries an instruction `call <toolName> <json-args>`; the model answers the
 * first turn with exactly that tool call (a fresh, unique toolCallId) and, once a tool result
 * for it is in the prompt, with a short text. Prompts without an instruction get a plain text
 * answer. The prompt is the AI SDK v2 prompt array (system / user / assistant / tool messages).
 */
import { randomUUID } from 'node:crypto';
import { MockLanguageModelV2, simulateReadableStream } from 'ai/test';

type CallOptions = Parameters<MockLanguageModelV2['doStream']>[0];
type Prompt = CallOptions['prompt'];
type PromptMessage = Prompt[number];
type StreamResult = Awaited<ReturnType<MockLanguageModelV2['doStream']>>;
type StreamPart = StreamResult['stream'] extends ReadableStream<infer P> ? P : never;
type GenerateResult = Awaited<ReturnType<MockLanguageModelV2['doGenerate']>>;

export interface ToolInstruction {
  toolName: string;
  args: Record<string, unknown>;
}

/** The next step the scripted model takes for a prompt. */
export type ScriptedStep =
  | { kind: 'tool-call'; toolCallId: string; toolName: string; args: Record<string, unknown> }
  | { kind: 'text'; text: string };

const INSTRUCTION_RE = /\bcall\s+([A-Za-z0-9_.:-]+)/;

/** Parses `call <toolName> <json-args>` out of free text. Returns null when there is none. */
export function parseInstruction(text: string): ToolInstruction | null {
  const match = INSTRUCTION_RE.exec(text);
  if (!match || match[1] === undefined) return null;
  const toolName = match[1];
  const rest = text.slice(match.index + match[0].length);
  return { toolName, args: parseJsonObject(rest) };
}

/** Finds the first JSON object in `text` (balanced braces, string-aware); `{}` when absent or invalid. */
function parseJsonObject(text: string): Record<string, unknown> {
  const start = text.indexOf('{');
  if (start < 0) return {};
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) {
        try {
          const parsed: unknown = JSON.parse(text.slice(start, i + 1));
          return isRecord(parsed) ? parsed : {};
        } catch {
          return {};
        }
      }
    }
  }
  return {};
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function userText(message: PromptMessage): string {
  if (message.role !== 'user') return '';
  const parts: string[] = [];
  for (const part of message.content) {
    if (part.type === 'text') parts.push(part.text);
  }
  return parts.join('\n');
}

/** Decides what the model does for this prompt: emit the instructed tool call, or answer with text. */
export function decideStep(prompt: Prompt, newId: () => string = () => `call_${randomUUID()}`): ScriptedStep {
  // The instruction is in the LAST user message; everything after it is this turn's history.
  let lastUser = -1;
  for (let i = prompt.length - 1; i >= 0; i--) {
    if (prompt[i]?.role === 'user') {
      lastUser = i;
      break;
    }
  }
  if (lastUser < 0) return { kind: 'text', text: 'Nothing to do.' };
  const userMessage = prompt[lastUser];
  const instruction = userMessage ? parseInstruction(userText(userMessage)) : null;
  if (!instruction) return { kind: 'text', text: 'No tool instruction found; nothing to do.' };

  // Has the turn already called the tool (tool-call part) or got a result for it (tool-result part)?
  let called = false;
  let resultText: string | undefined;
  for (const message of prompt.slice(lastUser + 1)) {
    if (message.role === 'assistant') {
      for (const part of message.content) {
        if (part.type === 'tool-call' && part.toolName === instruction.toolName) called = true;
        if (part.type === 'tool-result' && part.toolName === instruction.toolName) {
          called = true;
          resultText ??= summarize(part.output);
        }
      }
    } else if (message.role === 'tool') {
      for (const part of message.content) {
        if (part.type === 'tool-result') {
          called = true;
          resultText ??= summarize(part.output);
        }
      }
    }
  }
  if (called) {
    return {
      kind: 'text',
      text: `Done with ${instruction.toolName}${resultText ? `: ${resultText}` : '.'}`,
    };
  }
  return { kind: 'tool-call', toolCallId: newId(), toolName: instruction.toolName, args: instruction.args };
}

function summarize(output: unknown): string {
  let text: string;
  try {
    text = typeof output === 'string' ? output : JSON.stringify(output);
  } catch {
    text = String(output);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

const USAGE = { inputTokens: 1, outputTokens: 1, totalTokens: 2 };

function streamParts(step: ScriptedStep): StreamPart[] {
  if (step.kind === 'tool-call') {
    return [
      { type: 'stream-start', warnings: [] },
      { type: 'tool-call', toolCallId: step.toolCallId, toolName: step.toolName, input: JSON.stringify(step.args) },
      { type: 'finish', finishReason: 'tool-calls', usage: USAGE },
    ];
  }
  const id = `text_${randomUUID()}`;
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'text-start', id },
    { type: 'text-delta', id, delta: step.text },
    { type: 'text-end', id },
    { type: 'finish', finishReason: 'stop', usage: USAGE },
  ];
}

function generateResult(step: ScriptedStep): GenerateResult {
  if (step.kind === 'tool-call') {
    return {
      content: [
        { type: 'tool-call', toolCallId: step.toolCallId, toolName: step.toolName, input: JSON.stringify(step.args) },
      ],
      finishReason: 'tool-calls',
      usage: USAGE,
      warnings: [],
    };
  }
  return { content: [{ type: 'text', text: step.text }], finishReason: 'stop', usage: USAGE, warnings: [] };
}

/**
 * Creates the scripted model. Safe to share between agents (it keeps no per-run state) and safe for
 * long-running demos (the mock's call log is not allowed to grow).
 */
export function createScriptedModel(opts: { modelId?: string } = {}): MockLanguageModelV2 {
  const model: MockLanguageModelV2 = new MockLanguageModelV2({
    provider: 'mastra-task-bridge-demo',
    modelId: opts.modelId ?? 'scripted-tool-caller',
    doStream: async (options: CallOptions) => {
      model.doStreamCalls.length = 0;
      const step = decideStep(options.prompt);
      return { stream: simulateReadableStream<StreamPart>({ chunks: streamParts(step) }) };
    },
    doGenerate: async (options: CallOptions) => {
      model.doGenerateCalls.length = 0;
      return generateResult(decideStep(options.prompt));
    },
  });
  return model;
}

/** Builds the instruction text the scripted model understands. */
export function toolInstruction(toolName: string, args: Record<string, unknown> = {}): string {
  return `call ${toolName} ${JSON.stringify(args)}`;
}
