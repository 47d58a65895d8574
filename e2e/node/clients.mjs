// Drives the proxy with the official openai Node SDK and prints one JSON
// object with what each call saw; e2e/node_test.go runs it and asserts.
//
//   OPENAI_BASE_URL=https://localhost:8443/v1 OPENAI_API_KEY=cpk_... \
//   NODE_EXTRA_CA_CERTS=<caddy root.crt> NONCE=abc node clients.mjs
//
// Markers such as [[scenario:tool_call]] pick the fake backend's behaviour.
import OpenAI from 'openai';
import { VERSION } from 'openai/version';

const nonce = process.env.NONCE ?? 'nonce';
const model = process.env.MODEL ?? 'gpt-5.5';
const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL,
  apiKey: process.env.OPENAI_API_KEY,
  maxRetries: 0,
  timeout: 30_000,
});

const out = { sdk: VERSION, node: process.version };

async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (err) {
    out[name] = { error: String(err?.message ?? err), status: err?.status ?? null };
  }
}

// 1. Chat Completions, streamed, with stream_options.include_usage.
await step('chat_stream', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: `stream ${nonce}-stream [[scenario:reasoning_text]]` }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let reasoning = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  let usageChunkChoices = null;
  for await (const chunk of stream) {
    chunks++;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      reasoning += c.delta?.reasoning_content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) {
      usage = chunk.usage;
      usageChunkChoices = chunk.choices.length;
    }
  }
  return { text, reasoning, finish, usage, usageChunkChoices, chunks };
});

// 2. Chat Completions, not streamed.
await step('chat', async () => {
  const res = await client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: `plain ${nonce}-chat` },
    ],
  });
  return { object: res.object, text: res.choices[0].message.content, finish: res.choices[0].finish_reason, usage: res.usage, model: res.model };
});

// 3. A tool-call round trip: the model calls get_weather, the client runs
// it and sends the result back in a second request.
await step('tools', async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
    },
  }];
  const messages = [{ role: 'user', content: `weather in Paris ${nonce}-tools [[scenario:tool_call]]` }];
  const first = await client.chat.completions.create({ model, messages, tools });
  const msg = first.choices[0].message;
  const call = msg.tool_calls?.[0];
  if (!call) return { firstFinish: first.choices[0].finish_reason, error: 'no tool call' };
  messages.push(msg);
  messages.push({ role: 'tool', tool_call_id: call.id, content: `sunny-21C-${nonce}` });
  const second = await client.chat.completions.create({ model, messages, tools });
  return {
    firstFinish: first.choices[0].finish_reason,
    call: { id: call.id, name: call.function.name, arguments: call.function.arguments },
    secondFinish: second.choices[0].finish_reason,
    secondText: second.choices[0].message.content,
  };
});

// 4. Responses API, streamed.
await step('responses_stream', async () => {
  const stream = await client.responses.create({ model, input: `responses ${nonce}-responses`, stream: true });
  const types = [];
  let text = '';
  let status = null;
  let usage = null;
  for await (const ev of stream) {
    if (!types.includes(ev.type)) types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') {
      status = ev.response.status;
      usage = ev.response.usage;
    }
  }
  return { text, types, status, usage };
});

// 5. Responses API, not streamed.
await step('responses', async () => {
  const res = await client.responses.create({ model, input: `responses plain ${nonce}-responses-plain` });
  return { status: res.status, text: res.output_text };
});

process.stdout.write(JSON.stringify(out) + '\n');
