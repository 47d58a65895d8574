// The openai SDK 7 asking for the Fast tier through the proxy; prints one
// JSON object for e2e/servicetier_test.go, which reads what reached the
// fake backend. Each request's text carries its case name, so the Go side
// finds it upstream.
//
//   OPENAI_BASE_URL=… OPENAI_API_KEY=<allow key> DENY_KEY=<deny key> NONCE=abc
import OpenAI from 'openai';

const nonce = process.env.NONCE ?? 'nonce';
const allow = new OpenAI();
const deny = new OpenAI({ apiKey: process.env.DENY_KEY });
const out = {};

// The error an SDK call ended with, as the SDK exposes it.
const failure = (err) => ({ status: err.status ?? null, code: err.code ?? null, param: err.param ?? null, message: err.message ?? String(err) });

const chat = async (name, client, body) => {
  try {
    const res = await client.chat.completions.create({ ...body, messages: [{ role: 'user', content: `${nonce}-${name}` }] });
    out[name] = { text: res.choices[0].message.content };
  } catch (err) {
    out[name] = { error: failure(err) };
  }
};

await chat('chat_fast', allow, { model: 'gpt-5.5', service_tier: 'fast' });
await chat('chat_default', allow, { model: 'gpt-5.5', service_tier: 'default' });
await chat('chat_model_default', allow, { model: 'gpt-5.3-codex' });
await chat('deny_fast', deny, { model: 'gpt-5.5', service_tier: 'fast' });
await chat('refused', allow, { model: 'gpt-5.4-mini', service_tier: 'fast' });

try {
  const res = await allow.responses.create({ model: 'gpt-5.5', service_tier: 'priority', input: `${nonce}-responses_priority` });
  out.responses_priority = { text: res.output_text };
} catch (err) {
  out.responses_priority = { error: failure(err) };
}

process.stdout.write(JSON.stringify(out) + '\n');
