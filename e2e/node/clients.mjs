// Drives the proxy with real Node clients and prints one JSON object with
// what each call saw; e2e/node_test.go runs it and asserts:
//   openai   the official SDK, current major (7.x): chat and Responses,
//            streamed and not, tools, structured output
//   openai6  the same SDK's previous major (6.x): its streaming helper and
//            chunk accumulation differ, so chat streams and tool calls again
//   ai       the Vercel AI SDK (7.x) with @ai-sdk/openai, on chat() and
//            responses()
//
//   OPENAI_BASE_URL=https://localhost:8443/v1 OPENAI_API_KEY=cpk_... \
//   NODE_EXTRA_CA_CERTS=<caddy root.crt> NONCE=abc node_modules/.bin/node clients.mjs
//
// openai 7 and ai 7 need Node >= 22: package.json installs it as
// node_modules/.bin/node.
import OpenAI from 'openai';
import { VERSION } from 'openai/version';
import { zodResponseFormat, zodTextFormat } from 'openai/helpers/zod';
import OpenAI6 from 'openai6';
import { VERSION as VERSION6 } from 'openai6/version';
import { readFileSync } from 'node:fs';
import { runOpenAI } from './openai-sdk.mjs';
import { runAI } from './ai-sdk.mjs';

const env = {
  baseURL: process.env.OPENAI_BASE_URL,
  apiKey: process.env.OPENAI_API_KEY,
  nonce: process.env.NONCE ?? 'nonce',
  model: process.env.MODEL ?? 'gpt-5.5',
};

const pkgVersion = (name) => JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;

const out = { node: process.version };
out.openai = await runOpenAI({
  OpenAI,
  version: VERSION,
  helpers: { zodResponseFormat, zodTextFormat },
  env,
  cases: ['chat_stream', 'chat', 'tools', 'chat_stream_tool_raw', 'chat_stream_tool', 'chat_structured',
    'responses_stream', 'responses', 'responses_tool', 'responses_structured'],
});
out.openai6 = await runOpenAI({
  OpenAI: OpenAI6,
  version: VERSION6,
  env: { ...env, nonce: `${env.nonce}-v6` },
  cases: ['chat_stream', 'chat_stream_tool'],
});
out.ai = { sdk: pkgVersion('ai'), provider: pkgVersion('@ai-sdk/openai'), ...(await runAI(env)) };

process.stdout.write(JSON.stringify(out) + '\n');
