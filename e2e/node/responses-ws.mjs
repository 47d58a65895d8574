// The official openai SDK's Responses WebSocket mode (ResponsesWS, from
// openai/resources/responses/ws, on the ws package) against the proxy, and
// prints one JSON object with what it saw; e2e/websocket_test.go runs it:
//   turns      two turns on one socket, the second with the first's output
//              in its input
//   error      an error event (a bad response.create) that leaves the
//              socket usable: a third turn on it completes
//   chained    a tool round trip chained with previous_response_id: the
//              second turn sends only the function_call_output
//   wrong_key  a socket opened with a key the proxy does not know
//
//   OPENAI_BASE_URL=https://localhost:8443/v1 OPENAI_API_KEY=cpk_... \
//   NODE_EXTRA_CA_CERTS=<caddy root.crt> NONCE=abc node_modules/.bin/node responses-ws.mjs
import OpenAI from 'openai';
import { VERSION } from 'openai/version';
import { ResponsesWS } from 'openai/resources/responses/ws';

const baseURL = process.env.OPENAI_BASE_URL;
const apiKey = process.env.OPENAI_API_KEY;
const nonce = process.env.NONCE ?? 'nonce';
const model = process.env.MODEL ?? 'gpt-5.5';

const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms))]);

// turn sends one response.create and resolves with the events up to its
// end: response.completed, or the error the SDK reported.
function turn(ws, body) {
  return withTimeout(
    new Promise((resolve) => {
      const types = [];
      let text = '';
      const onEvent = (ev) => {
        types.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.completed') done({ response: ev.response });
      };
      const onError = (err) => done({ error: { message: err.message, event: err.error ?? null } });
      const done = (r) => {
        ws.off('event', onEvent);
        ws.off('error', onError);
        resolve({ types, text, ...r });
      };
      ws.on('event', onEvent);
      ws.on('error', onError);
      ws.send({ type: 'response.create', ...body });
    }),
    30000,
    'a turn',
  );
}

const out = { sdk: VERSION };

{
  const client = new OpenAI({ baseURL, apiKey });
  const ws = new ResponsesWS(client);
  const input = [{ role: 'user', content: `ws first ${nonce}` }];
  const first = await turn(ws, { model, input });
  const second = await turn(ws, {
    model,
    input: [...input, ...(first.response?.output ?? []), { role: 'user', content: `ws second ${nonce}` }],
  });
  const bad = await turn(ws, { model, input: 42 });
  const after = await turn(ws, { model, input: `ws after the error ${nonce}` });
  out.turns = [first, second].map((t) => ({
    types: t.types,
    text: t.text,
    id: t.response?.id,
    status: t.response?.status,
    usage: t.response?.usage,
    error: t.error,
  }));
  out.error = {
    message: bad.error?.message,
    event: bad.error?.event,
    after: { text: after.text, status: after.response?.status, error: after.error },
  };
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  ws.close({ code: 1000, reason: 'done' });
  out.closeCode = await withTimeout(closed, 10000, 'the close');
}

{
  const client = new OpenAI({ baseURL, apiKey });
  const ws = new ResponsesWS(client);
  const tools = [{
    type: 'function', name: 'read_file', description: 'Reads a file',
    parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false },
    strict: true,
  }];
  const first = await turn(ws, { model, tools, input: `ws read a.txt ${nonce} [[scenario:tool_call]]` });
  const call = (first.response?.output ?? []).find((it) => it.type === 'function_call');
  const second = call
    ? await turn(ws, {
        model, tools, previous_response_id: first.response.id,
        input: [{ type: 'function_call_output', call_id: call.call_id, output: `the file says ${nonce}` }],
      })
    : { types: [], text: '' };
  out.chained = {
    call: call ? { name: call.name, call_id: call.call_id } : null,
    first: { id: first.response?.id, status: first.response?.status, error: first.error },
    second: { id: second.response?.id, status: second.response?.status, text: second.text, error: second.error },
  };
  ws.close({ code: 1000, reason: 'done' });
}

{
  const client = new OpenAI({ baseURL, apiKey: 'cpk_not_a_key' });
  const ws = new ResponsesWS(client);
  const seen = await withTimeout(
    new Promise((resolve) => {
      const r = {};
      ws.on('error', (err) => {
        r.error ??= err.message;
      });
      ws.on('close', (code) => resolve({ ...r, closeCode: code }));
      ws.on('response.created', () => {
        r.served = true;
      });
      ws.send({ type: 'response.create', model, input: `ws wrong key ${nonce}` });
    }),
    15000,
    'the wrong key',
  );
  out.wrong_key = seen;
}

process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
