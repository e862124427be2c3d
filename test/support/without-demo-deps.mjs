// A Node module hook (node --import ./test/support/without-demo-deps.mjs) that makes the demo mode's packages
// unresolvable, as in an install with production dependencies only (the bridge's Docker image, `npm i --omit=dev`).
import { register } from 'node:module';

const hooks = `
const MISSING = new Set(['@mastra/core', '@mastra/observability', 'ai']);
export async function resolve(specifier, context, next) {
  const pkg = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  if (MISSING.has(pkg)) {
    const e = new Error("Cannot find package '" + pkg + "' imported from " + context.parentURL);
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
