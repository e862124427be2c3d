// The one error body every route answers with: `{ error, message? }` (a fixed word, then a sentence for people).
export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error'],
} as const;
