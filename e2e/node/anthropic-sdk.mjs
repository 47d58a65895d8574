// The Anthropic TypeScript SDK (@anthropic-ai/sdk) against the proxy's
// Messages API; e2e/anthropic_test.go runs it and asserts. It prints one
// JSON object with what each call saw (error and status when it threw).
//
//   ANTHROPIC_BASE_URL=https://localhost:8443 ANTHROPIC_API_KEY=cpk_... \
//   NODE_EXTRA_CA_CERTS=<caddy root.crt> NONCE=abc node_modules/.bin/node anthropic-sdk.mjs
//
// Markers such as [[scenario:tool_call]] pick the fake backend's behaviour.
import Anthropic from '@anthropic-ai/sdk';
import { readFileSync } from 'node:fs';

const baseURL = process.env.ANTHROPIC_BASE_URL;
const apiKey = process.env.ANTHROPIC_API_KEY;
const nonce = process.env.NONCE ?? 'nonce';
const model = process.env.MODEL ?? 'claude-sonnet-4-5';
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });

const weatherTool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

const cases = {
  async text() {
    const res = await client.messages.create({
      model,
      max_tokens: 1024,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: `plain ${nonce}-text` }],
    });
    return { id: res.id, type: res.type, role: res.role, model: res.model, text: res.content.map((b) => b.text ?? '').join(''),
      stop_reason: res.stop_reason, usage: res.usage };
  },

  async stream() {
    const events = [];
    const stream = client.messages.stream({
      model,
      max_tokens: 1024,
      messages: [{ role: 'user', content: `stream ${nonce}-stream` }],
    });
    stream.on('streamEvent', (ev) => events.push(ev.type));
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    return { events, text, final_text: final.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
      stop_reason: final.stop_reason, usage: final.usage };
  },

  async tools() {
    const messages = [{ role: 'user', content: `weather in Paris ${nonce}-tools [[scenario:tool_call]]` }];
    const first = await client.messages.create({ model, max_tokens: 1024, messages, tools: [weatherTool] });
    const call = first.content.find((b) => b.type === 'tool_use');
    if (!call) return { first_stop: first.stop_reason, error: 'no tool_use block' };
    messages.push({ role: 'assistant', content: first.content });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: `sunny-21C-${nonce}` }] });
    // The second turn streams, as Claude Code does.
    const second = await client.messages.stream({ model, max_tokens: 1024, messages, tools: [weatherTool] }).finalMessage();
    return { first_stop: first.stop_reason, call: { id: call.id, name: call.name, input: call.input },
      second_stop: second.stop_reason, second_text: second.content.filter((b) => b.type === 'text').map((b) => b.text).join('') };
  },

  async count_tokens() {
    const res = await client.messages.countTokens({ model, messages: [{ role: 'user', content: `count these words ${nonce}` }] });
    return { input_tokens: res.input_tokens };
  },

  async wrong_key() {
    const bad = new Anthropic({ baseURL, apiKey: 'cpk_wrong', maxRetries: 0 });
    try {
      await bad.messages.create({ model, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
      return { error: 'no error thrown' };
    } catch (e) {
      return { class: e.constructor.name, status: e.status, type: e.error?.error?.type, body_type: e.error?.type };
    }
  },
};

const out = { sdk: JSON.parse(readFileSync(new URL('./node_modules/@anthropic-ai/sdk/package.json', import.meta.url))).version };
for (const [name, fn] of Object.entries(cases)) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: String(e?.message ?? e), status: e?.status ?? null };
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
